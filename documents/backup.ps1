$VssTagKey = '{{ VssTagKey }}'
$VssTagValue = '{{ VssTagValue }}'
# The vss-restore nightly backup (docs/backup.md). SSM pastes the parameters in
# as text, so each is assigned once above, inside single quotes its allowedPattern cannot close.
# DiskShadow makes one persistent shadow copy set of every fixed NTFS drive; while the set
# exists, a child script snapshots each EBS volume behind those drives and tags the snapshot
# with the shadow copy IDs the restore must revert to. The set is deleted whatever happened,
# and the last line on stdout is one JSON summary.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
$ProgressPreference = 'SilentlyContinue'

# The tag keys written on every snapshot besides the VSS marker: those of
# functions/vss_restore/tags.py, which the restore reads (a unit test compares them).
$TagKeys = [ordered]@{
    INSTANCE_ID = 'vss-restore:instance-id'
    DRIVE_LETTERS = 'vss-restore:drive-letters'
    DEVICE = 'vss-restore:device'
    SHADOW_COPY_ID = 'vss-restore:shadow-copy-id'
    SHADOW_SET_ID = 'vss-restore:shadow-set-id'
}
$ShadowIdPattern = '^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$'
# How long each DiskShadow run may take: bounded, so that the finally block that deletes the
# shadow copies still runs within the document's 1800 s.
$BackupSeconds = 1200
$DeleteSeconds = 300
# CreateSnapshot refused for a rate, once the AWS SDK's own retries are spent, is tried again
# after rand(0, min(cap, base * 2^n)) s, "full jitter" (AWS Architecture Blog, "Exponential
# Backoff And Jitter"; EC2 API Reference, "Request throttling for the Amazon EC2 API" asks
# for exponential backoff), until $RetrySeconds after the snapshot script began: within
# $BackupSeconds, while the shadow copies exist (docs/backup.md).
$RetryCodes = @('RequestLimitExceeded', 'SnapshotCreationPerVolumeRateExceeded', 'ConcurrentSnapshotLimitExceeded')
$RetryBaseSeconds = 2
$RetryCapSeconds = 30
$RetrySeconds = 900
# The backup's CreateSnapshot rate is bounded by design: this script makes its k-th (from 0)
# no sooner than (k + 1) * $SnapshotGapSeconds after it began, so one script makes at most
# one every $SnapshotGapSeconds, and the window's MaxConcurrency scripts at most
# MaxConcurrency / $SnapshotGapSeconds a second (100 / 40 = 2.5 by default), leaving the
# rest of CreateSnapshot's 5 a second to the restores' paced consistent snapshots and the
# operator (docs/performance.md, "Pacing our EC2 calls").
$SnapshotGapSeconds = 40
$Began = [DateTime]::UtcNow

# What DiskShadow's exec runs while the shadow copies exist (through snapshot.cmd): one EBS
# snapshot per planned volume, tagged at birth, and results.json. It reads everything else
# from plan.json, written next to it. Exit 1 (some volume failed) makes DiskShadow stop
# before end backup, so that the writers never hear of a backup that did not happen in full.
$SnapshotScript = @'
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
$ProgressPreference = 'SilentlyContinue'

function Get-ErrorCode($ErrorRecord) {
    # AWS SDK exceptions carry the API's error code (UnauthorizedOperation, ...).
    for ($e = $ErrorRecord.Exception; $null -ne $e; $e = $e.InnerException) {
        $code = $e.PSObject.Properties['ErrorCode']
        if ($null -ne $code -and $code.Value) { return [string]$code.Value }
    }
    return ''
}

function Format-ErrorText($ErrorRecord) {
    $text = [string]$ErrorRecord.Exception.Message
    $code = Get-ErrorCode $ErrorRecord
    if ($code) { return ('{0}: {1}' -f $code, $text) }
    return $text
}

function New-SnapshotWithRetry($Entry, [string]$Description, $Specification) {
    # The backup's settings ($RetryCodes ...), from plan.json; $deadline is the budget's end.
    for ($attempt = 0; ; $attempt++) {
        try {
            return New-EC2Snapshot -VolumeId $Entry.volume_id -Description $Description -TagSpecification $Specification -Region $plan.region -Force
        } catch {
            $code = Get-ErrorCode $_
            $ceiling = [Math]::Min([double]$plan.retry.cap_seconds, [double]$plan.retry.base_seconds * [Math]::Pow(2, $attempt))
            $wait = Get-Random -Minimum 0.0 -Maximum $ceiling
            if ($plan.retry.codes -notcontains $code -or (Get-Date).AddSeconds($wait) -gt $deadline) { throw }
            $Entry.retries += 1
            [Console]::Error.WriteLine(('{0}: {1}, retry {2} in {3:N1} s' -f $Entry.volume_id, $code, $Entry.retries, $wait))
            Start-Sleep -Milliseconds ([int]($wait * 1000))
        }
    }
}

$plan = Get-Content -LiteralPath (Join-Path $PSScriptRoot 'plan.json') -Raw | ConvertFrom-Json
$results = [ordered]@{ shadow_set_id = ''; shadow_ids_from = 'environment'; error = $null; snapshots = @() }
$complete = $false
$deadline = (Get-Date).AddSeconds([double]$plan.retry.budget_seconds)
$began = New-Object -TypeName DateTime -ArgumentList ([long]$plan.began_ticks), ([DateTimeKind]::Utc)
$made = 0
try {
    # After create, DiskShadow sets each alias (VolumeD = that drive's shadow copy ID) and
    # VSS_SHADOW_SET as environment variables, which this process should inherit.
    $drives = @($plan.volumes | ForEach-Object { $_.drives })
    $ids = @{}
    foreach ($drive in $drives) { $ids[$drive.alias] = [string][Environment]::GetEnvironmentVariable($drive.alias) }
    $setId = [string][Environment]::GetEnvironmentVariable('VSS_SHADOW_SET')
    $unset = @($drives | Where-Object { $ids[$_.alias] -notmatch $plan.shadow_id_pattern })
    if ($unset.Count -gt 0 -or $setId -notmatch $plan.shadow_id_pattern) {
        # Not inherited: the shadow copies that appeared since the backup began, if they form
        # one set, one shadow copy on each drive's volume.
        $results.shadow_ids_from = 'wmi'
        $new = @(Get-CimInstance -ClassName Win32_ShadowCopy | Where-Object { $plan.shadows_before -notcontains [string]$_.ID })
        $sets = @($new | ForEach-Object { [string]$_.SetID } | Sort-Object -Unique)
        $setId = ''
        if ($sets.Count -eq 1) { $setId = $sets[0] }
        foreach ($drive in $drives) {
            $found = @($new | Where-Object { [string]$_.VolumeName -eq $drive.path })
            $ids[$drive.alias] = ''
            if ($setId -and $found.Count -eq 1) { $ids[$drive.alias] = [string]$found[0].ID }
        }
        [Console]::Error.WriteLine(('DiskShadow variables not inherited; from Win32_ShadowCopy: set {0}, {1} new shadow copies' -f $setId, $new.Count))
    }
    $results.shadow_set_id = $setId
    Import-Module AWS.Tools.EC2
    foreach ($volume in @($plan.volumes)) {
        # The paced start: this volume's CreateSnapshot no sooner than its turn ($SnapshotGapSeconds).
        $pause = ($began.AddSeconds(($made + 1) * [double]$plan.snapshot_gap_seconds) - [DateTime]::UtcNow).TotalMilliseconds
        if ($pause -gt 0) { Start-Sleep -Milliseconds ([int]$pause) }
        $made += 1
        $letters = @($volume.drives | ForEach-Object { $_.letter })
        $entry = [ordered]@{ volume_id = $volume.volume_id; shadow_copy_ids = ''; snapshot_id = $null; retries = 0; error = $null }
        try {
            $missing = @($volume.drives | Where-Object { $ids[$_.alias] -notmatch $plan.shadow_id_pattern } | ForEach-Object { $_.letter + ':' })
            $tags = [ordered]@{}
            $tags[$plan.vss_tag_key] = $plan.vss_tag_value
            $tags[$plan.tag_keys.INSTANCE_ID] = $plan.instance_id
            $tags[$plan.tag_keys.DRIVE_LETTERS] = $letters -join ','
            $tags[$plan.tag_keys.DEVICE] = $volume.device
            if ($missing.Count -eq 0) {
                $entry.shadow_copy_ids = @($volume.drives | ForEach-Object { $ids[$_.alias] }) -join ','
                $tags[$plan.tag_keys.SHADOW_COPY_ID] = $entry.shadow_copy_ids
            }
            if ($setId -match $plan.shadow_id_pattern) { $tags[$plan.tag_keys.SHADOW_SET_ID] = $setId }
            $specification = New-Object -TypeName Amazon.EC2.Model.TagSpecification
            $specification.ResourceType = [Amazon.EC2.ResourceType]::Snapshot
            $specification.Tags = New-Object -TypeName 'System.Collections.Generic.List[Amazon.EC2.Model.Tag]'
            foreach ($key in $tags.Keys) {
                $specification.Tags.Add((New-Object -TypeName Amazon.EC2.Model.Tag -ArgumentList $key, ([string]$tags[$key])))
            }
            $description = 'vss-restore backup of {0} {1} ({2})' -f $plan.instance_id, ($letters -join ','), $volume.device
            $snapshot = New-SnapshotWithRetry $entry $description $specification
            $entry.snapshot_id = [string]$snapshot.SnapshotId
            Write-Output ('{0} ({1}): snapshot {2}' -f $volume.volume_id, ($letters -join ','), $entry.snapshot_id)
            if ($missing.Count -gt 0) {
                # A backup without the IDs still beats none; the restore then takes the newest shadow copy.
                throw ('snapshot {0} has no shadow copy IDs: none found for {1}' -f $entry.snapshot_id, ($missing -join ','))
            }
        } catch {
            $entry.error = Format-ErrorText $_
            [Console]::Error.WriteLine(('{0}: {1}' -f $volume.volume_id, $entry.error))
        }
        $results.snapshots += [pscustomobject]$entry
    }
} catch {
    $results.error = Format-ErrorText $_
    [Console]::Error.WriteLine($results.error)
}
try {
    Set-Content -LiteralPath (Join-Path $PSScriptRoot 'results.json') -Value (ConvertTo-Json -InputObject $results -Compress -Depth 8) -Encoding Ascii
    $failed = @($results.snapshots | Where-Object { $_.error })
    $complete = ($null -eq $results.error) -and ($failed.Count -eq 0)
} catch {
    [Console]::Error.WriteLine(('results.json not written: {0}' -f $_.Exception.Message))
}
if ($complete) { exit 0 }
exit 1
'@

function Format-ErrorText($ErrorRecord) {
    $text = [string]$ErrorRecord.Exception.Message
    # AWS SDK exceptions carry the API's error code (UnauthorizedOperation, ...).
    for ($e = $ErrorRecord.Exception; $null -ne $e; $e = $e.InnerException) {
        $code = $e.PSObject.Properties['ErrorCode']
        if ($null -ne $code -and $code.Value) { return ('{0}: {1}' -f $code.Value, $text) }
    }
    return $text
}

function Add-SummaryError([string]$Text) {
    # To stderr: the summary must stay the last line on stdout.
    [Console]::Error.WriteLine($Text)
    if ($summary.error) { $summary.error = $summary.error + '; then: ' + $Text } else { $summary.error = $Text }
}

function Get-InstanceMetadata([string]$Path, [string]$Token) {
    $uri = 'http://169.254.169.254/latest/meta-data/' + $Path
    $value = Invoke-RestMethod -Uri $uri -Headers @{ 'X-aws-ec2-metadata-token' = $Token } -UseBasicParsing -TimeoutSec 10
    return ([string]$value).Trim()
}

function ConvertTo-EbsVolumeId([string]$SerialNumber) {
    # Nitro and AWS PV 8.2.3+ give the volume ID without its dash, maybe followed by a suffix
    # such as _00000001.; IDs have 8 or 17 hex digits, so no fixed length will do.
    if ($SerialNumber.Trim() -cmatch '^vol([0-9a-f]{17}|[0-9a-f]{8})(?![0-9a-f])') { return 'vol-' + $Matches[1] }
    return ''
}

function Invoke-DiskShadow([string]$Name, [string[]]$Lines, [int]$TimeoutSeconds) {
    $base = Join-Path $WorkPath $Name
    # The closing exit and an empty stdin keep DiskShadow from waiting for input.
    Set-Content -LiteralPath ($base + '.dsh') -Value ($Lines + 'exit') -Encoding Ascii
    $null = New-Item -ItemType File -Path ($base + '.in') -Force
    $start = @{
        FilePath = 'diskshadow.exe'
        ArgumentList = @('/s', ($base + '.dsh'))
        WorkingDirectory = $WorkPath
        RedirectStandardInput = $base + '.in'
        RedirectStandardOutput = $base + '.out'
        RedirectStandardError = $base + '.err'
        NoNewWindow = $true
        PassThru = $true
    }
    $process = Start-Process @start
    # Its exit code is never read (3010 must not reach the agent): callers check what it did.
    $finished = $process.WaitForExit($TimeoutSeconds * 1000)
    if (-not $finished) { Stop-ProcessTree $process.Id $process.StartTime }
    $output = @()
    foreach ($file in @(($base + '.out'), ($base + '.err'))) {
        try { $output += @(Get-Content -LiteralPath $file) }
        catch { $output += ('(cannot read {0}: {1})' -f $file, $_.Exception.Message) }
    }
    # The whole transcript to stderr (CloudWatch keeps it all); stdout stays short.
    foreach ($line in $output) { [Console]::Error.WriteLine(('diskshadow {0}: {1}' -f $Name, $line)) }
    return [pscustomobject]@{ finished = $finished; output = $output }
}

function Stop-ProcessTree([int]$Id, [datetime]$Since) {
    # Children first: the script DiskShadow's exec started (snapshot.cmd, its PowerShell) must
    # not go on snapshotting after the shadow set is deleted. A process started before its
    # parent is not its child: its parent's ID was reused.
    $children = @(Get-CimInstance -ClassName Win32_Process -Filter ('ParentProcessId = {0}' -f $Id) |
        Where-Object { $_.CreationDate -ge $Since })
    foreach ($child in $children) { Stop-ProcessTree ([int]$child.ProcessId) $child.CreationDate }
    try { Stop-Process -Id $Id -Force }
    catch { [Console]::Error.WriteLine(('cannot stop process {0}: {1}' -f $Id, $_.Exception.Message)) }
}

function Remove-ShadowCopyWithVssadmin([string]$Id) {
    if ($Id -notmatch $ShadowIdPattern) { return }
    # A child process: its stderr and exit code are read, never passed on (3010 reboots).
    $start = @{
        FilePath = 'vssadmin.exe'
        ArgumentList = @('delete', 'shadows', ('/shadow={0}' -f $Id), '/quiet')
        NoNewWindow = $true
        PassThru = $true
        Wait = $true
    }
    try {
        $process = Start-Process @start
        [Console]::Error.WriteLine(('vssadmin delete shadows /shadow={0}: exit {1}' -f $Id, $process.ExitCode))
    } catch {
        [Console]::Error.WriteLine(('vssadmin delete shadows /shadow={0} failed: {1}' -f $Id, $_.Exception.Message))
    }
}

function Remove-BackupShadowCopy([string]$SetId, [string[]]$Before) {
    if ($SetId) {
        # The persistent context the set was made in, as Microsoft's samples set it first.
        $run = Invoke-DiskShadow 'delete' @('set context persistent', ('delete shadows set {0}' -f $SetId)) $DeleteSeconds
        $left = @(Get-CimInstance -ClassName Win32_ShadowCopy | Where-Object { [string]$_.SetID -eq $SetId })
        # What DiskShadow left, one by one with vssadmin (Windows Server), then looked at again.
        foreach ($copy in $left) { Remove-ShadowCopyWithVssadmin ([string]$copy.ID) }
        if ($left.Count -gt 0) {
            $left = @(Get-CimInstance -ClassName Win32_ShadowCopy | Where-Object { [string]$_.SetID -eq $SetId })
        }
        if ($left.Count -gt 0) {
            throw ('{0} shadow copies of set {1} are left after delete shadows (finished: {2})' -f $left.Count, $SetId, $run.finished)
        }
        return $true
    }
    $new = @(Get-CimInstance -ClassName Win32_ShadowCopy | Where-Object { $Before -notcontains [string]$_.ID })
    if ($new.Count -gt 0) {
        throw ('the shadow set ID is unknown, so these shadow copies made during the backup are left: {0}' -f
            (@($new | ForEach-Object { [string]$_.ID }) -join ','))
    }
    return $true
}

function Add-SnapshotEntry($VolumeId, [string]$DriveLetters, [string]$Problem) {
    $summary.snapshots += [pscustomobject]@{
        volume_id = $VolumeId
        drive_letters = $DriveLetters
        shadow_copy_ids = ''
        snapshot_id = $null
        retries = 0
        error = $Problem
    }
}

$summary = [ordered]@{
    schema = 1
    action = 'Backup'
    instance_id = ''
    shadow_set_id = ''
    shadow_ids_from = ''
    snapshots = @()
    shadows_deleted = $false
    ok = $false
    error = $null
}
$WorkPath = ''
$before = @()
$setId = ''
$madeShadows = $false  # set just before DiskShadow runs: from then on, finally deletes its set

try {
    # IMDSv2: a session token first.
    $tokenHeaders = @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '600' }
    $token = [string](Invoke-RestMethod -Method Put -Uri 'http://169.254.169.254/latest/api/token' -Headers $tokenHeaders -UseBasicParsing -TimeoutSec 10)
    $instanceId = Get-InstanceMetadata 'instance-id' $token
    $region = Get-InstanceMetadata 'placement/region' $token
    if ($instanceId -notmatch '^i-[0-9a-f]{8,17}$') { throw ('IMDS gave an odd instance ID: {0}' -f $instanceId) }
    if ($region -notmatch '^[a-z]{2}(-[a-z]+)+-[0-9]+$') { throw ('IMDS gave an odd region: {0}' -f $region) }
    $summary.instance_id = $instanceId

    # The small module loads in seconds; the monolithic AWSPowerShell can take minutes.
    if (-not (Get-Module -ListAvailable -Name AWS.Tools.EC2)) {
        throw 'the PowerShell module AWS.Tools.EC2 is not installed (Install-Module AWS.Tools.EC2 -Scope AllUsers); nothing backed up'
    }
    Import-Module AWS.Tools.EC2

    $drives = @(Get-Volume | Where-Object {
        # The raw CIM value (3 = fixed): the Storage module's text for it may be localized.
        $_.CimInstanceProperties['DriveType'].Value -eq 3 -and [string]$_.FileSystem -eq 'NTFS' -and
        [string]$_.DriveLetter -match '^[A-Za-z]$'
    } | Sort-Object -Property DriveLetter)
    if ($drives.Count -eq 0) { throw 'no fixed NTFS volume with a drive letter: nothing to back up' }

    # Which EBS volume holds each drive: the disk's serial number is the volume ID. One drive
    # that cannot be placed (a dynamic or striped volume has no partition of its own) is
    # reported and left out; the others are backed up.
    $planned = [ordered]@{}
    foreach ($drive in $drives) {
        $letter = ([string]$drive.DriveLetter).ToUpperInvariant()
        try {
            $disk = @(Get-Partition -DriveLetter $letter | Get-Disk)
            if ($disk.Count -ne 1) { throw ('it lies on {0} disks' -f $disk.Count) }
            $disk = $disk[0]
        } catch {
            Add-SnapshotEntry $null $letter ('drive {0}: not backed up, no single disk holds it (a dynamic, striped or spanned volume?): {1}' -f
                $letter, (Format-ErrorText $_))
            continue
        }
        $volumeId = ConvertTo-EbsVolumeId ([string]$disk.SerialNumber)
        if (-not $volumeId) {
            if ([string]$disk.FriendlyName -match 'Instance Storage') {
                Write-Output ('{0}: on instance storage (disk {1}), which no EBS snapshot holds' -f $letter, $disk.Number)
            } else {
                Add-SnapshotEntry $null $letter ('drive {0}: disk {1} (serial {2}, {3}) is no EBS volume this backup can identify' -f
                    $letter, $disk.Number, $disk.SerialNumber, $disk.FriendlyName)
            }
            continue
        }
        if (-not $planned.Contains($volumeId)) {
            $planned[$volumeId] = [ordered]@{ volume_id = $volumeId; device = ''; drives = @() }
        }
        $planned[$volumeId].drives += [pscustomobject]@{ letter = $letter; alias = 'Volume' + $letter; path = [string]$drive.Path }
    }
    if ($planned.Count -eq 0) { throw 'no EBS volume holds a fixed NTFS drive: nothing to back up' }

    # EBS volumes mounted in a folder, with no drive letter: DiskShadow is never asked to
    # shadow them, so they are reported, never silently left out.
    foreach ($partition in @(Get-Partition | Where-Object { -not ([string]$_.DriveLetter -match '^[A-Za-z]$') })) {
        $folders = @($partition.AccessPaths | Where-Object { [string]$_ -match '^[A-Za-z]:\\.+' })
        if ($folders.Count -eq 0) { continue }
        $volumeId = ConvertTo-EbsVolumeId ([string]($partition | Get-Disk).SerialNumber)
        Add-SnapshotEntry $volumeId '' ('mounted at {0} with no drive letter: not backed up (give it a drive letter to include it)' -f
            ($folders -join ', '))
    }

    # The device names, and a check that each volume is attached here: one filtered call.
    $described = $null
    try {
        $described = @(Get-EC2Volume -VolumeId @($planned.Keys) -Region $region)
    } catch {
        [Console]::Error.WriteLine(('device names unknown, DescribeVolumes failed: {0}' -f (Format-ErrorText $_)))
    }
    if ($null -ne $described) {
        foreach ($volumeId in @($planned.Keys)) {
            $attached = @($described | Where-Object { $_.VolumeId -eq $volumeId } | ForEach-Object { $_.Attachments } |
                Where-Object { $_.InstanceId -eq $instanceId })
            if ($attached.Count -eq 1) {
                $planned[$volumeId].device = [string]$attached[0].Device
            } else {
                $letters = @($planned[$volumeId].drives | ForEach-Object { $_.letter }) -join ','
                Add-SnapshotEntry $volumeId $letters ('{0} is not attached to {1} (disk serial mix-up?); not snapshotted' -f $volumeId, $instanceId)
                $planned.Remove($volumeId)
            }
        }
        if ($planned.Count -eq 0) { throw 'none of the EBS volumes is attached here: nothing to back up' }
    }

    $WorkPath = Join-Path ([IO.Path]::GetTempPath()) ('vss-restore-backup-' + [guid]::NewGuid().ToString('N'))
    # DiskShadow scripts take paths unquoted.
    if ($WorkPath -match '\s') { throw ('the temporary folder {0} has a space in its path' -f $WorkPath) }
    $null = New-Item -ItemType Directory -Path $WorkPath
    $before = @(Get-CimInstance -ClassName Win32_ShadowCopy | ForEach-Object { [string]$_.ID })
    $plan = [ordered]@{
        instance_id = $instanceId
        region = $region
        vss_tag_key = $VssTagKey
        vss_tag_value = $VssTagValue
        tag_keys = $TagKeys
        retry = [ordered]@{ codes = $RetryCodes; base_seconds = $RetryBaseSeconds; cap_seconds = $RetryCapSeconds; budget_seconds = $RetrySeconds }
        snapshot_gap_seconds = $SnapshotGapSeconds
        began_ticks = $Began.Ticks
        shadow_id_pattern = $ShadowIdPattern
        shadows_before = $before
        volumes = @($planned.Values | ForEach-Object { [pscustomobject]$_ })
    }
    Set-Content -LiteralPath (Join-Path $WorkPath 'plan.json') -Value (ConvertTo-Json -InputObject $plan -Compress -Depth 8) -Encoding Ascii
    Set-Content -LiteralPath (Join-Path $WorkPath 'snapshot.ps1') -Value $SnapshotScript -Encoding Ascii
    $powershell = '"%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe" -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "{0}"'
    $launcher = @('@echo off', ($powershell -f (Join-Path $WorkPath 'snapshot.ps1')), 'exit /b %ERRORLEVEL%')
    Set-Content -LiteralPath (Join-Path $WorkPath 'snapshot.cmd') -Value $launcher -Encoding Ascii

    $madeShadows = $true
    $run = Invoke-DiskShadow 'backup' (@(
        'set context persistent'
        'set option differential'
        'set verbose on'
        ('set metadata {0}' -f (Join-Path $WorkPath 'backup.cab'))
        'begin backup'
    ) + @($planned.Values | ForEach-Object { $_.drives } | ForEach-Object { 'add volume {0}: alias {1}' -f $_.letter, $_.alias }) + @(
        'create'
        ('exec {0}' -f (Join-Path $WorkPath 'snapshot.cmd'))
        'end backup'
    )) $BackupSeconds

    $results = $null
    $resultsPath = Join-Path $WorkPath 'results.json'
    if (Test-Path -LiteralPath $resultsPath) { $results = Get-Content -LiteralPath $resultsPath -Raw | ConvertFrom-Json }
    # The set to delete: as the snapshot script saw it, else as DiskShadow's transcript says.
    if ($null -ne $results -and [string]$results.shadow_set_id -match $ShadowIdPattern) {
        $setId = [string]$results.shadow_set_id
        $summary.shadow_ids_from = [string]$results.shadow_ids_from
    } else {
        $said = @($run.output | Select-String -Pattern 'VSS_SHADOW_SET for shadow set ID (\{[0-9A-Fa-f-]{36}\})' |
            ForEach-Object { $_.Matches[0].Groups[1].Value } | Sort-Object -Unique)
        if ($said.Count -eq 1) { $setId = $said[0] }
    }
    $summary.shadow_set_id = $setId
    if (-not $run.finished) { Add-SummaryError ('DiskShadow did not finish within {0} s and was stopped' -f $BackupSeconds) }
    if ($null -ne $results -and $results.error) { Add-SummaryError ('snapshot script: ' + $results.error) }
    foreach ($volume in @($planned.Values)) {
        $letters = @($volume.drives | ForEach-Object { $_.letter }) -join ','
        $reported = @()
        if ($null -ne $results) { $reported = @($results.snapshots | Where-Object { $_.volume_id -eq $volume.volume_id }) }
        if ($reported.Count -eq 1) {
            $summary.snapshots += [pscustomobject]@{
                volume_id = $volume.volume_id
                drive_letters = $letters
                shadow_copy_ids = [string]$reported[0].shadow_copy_ids
                snapshot_id = $reported[0].snapshot_id
                retries = [int]$reported[0].retries
                error = $reported[0].error
            }
        } else {
            Add-SnapshotEntry $volume.volume_id $letters 'not snapshotted: the snapshot script never reported on it (DiskShadow transcript on stderr)'
        }
    }
} catch {
    Add-SummaryError (Format-ErrorText $_)
} finally {
    # Whatever happened above, no shadow copy of this backup stays on the instance: the
    # snapshots already hold theirs.
    if ($madeShadows) {
        try { $summary.shadows_deleted = Remove-BackupShadowCopy $setId $before } catch { Add-SummaryError (Format-ErrorText $_) }
    } else {
        $summary.shadows_deleted = $true
    }
    if ($WorkPath) { Remove-Item -LiteralPath $WorkPath -Recurse -Force -ErrorAction SilentlyContinue }
}

$failed = @($summary.snapshots | Where-Object { $_.error -or -not $_.snapshot_id })
$summary.ok = ($null -eq $summary.error) -and $summary.shadows_deleted -and ($failed.Count -eq 0) -and
    (@($summary.snapshots).Count -gt 0)
Write-Output (ConvertTo-Json -InputObject $summary -Compress -Depth 8)
# Never a child tool's exit code: 3010 would make the SSM agent reboot the instance.
if ($summary.ok) { exit 0 }
exit 1
