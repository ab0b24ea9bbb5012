$Action = '{{ Action }}'
$VolumeId = '{{ VolumeId }}'
$DiskNumber = '{{ DiskNumber }}'
$ShadowCopyIds = '{{ ShadowCopyIds }}'
$DiskIdentity = '{{ DiskIdentity }}'
$ValidationScript = '{{ ValidationScript }}'
$LastAction = '{{ LastAction }}'
# The vss-restore disk tool (docs/disk-tool.md). SSM pastes the parameters in as text, so
# each is assigned once above, inside single quotes its allowedPattern cannot close.
# Python decides everything; this script acts on one disk and reports one JSON line.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
$ProgressPreference = 'SilentlyContinue'

# GetCommandInvocation keeps the first 24,000 characters of stdout (SSM API Reference,
# StandardOutputContent): every line before the report counts, and the report must fit after them.
$StdoutKept = 24000
$written = 0
function Write-Note([string[]]$Lines) {
    foreach ($line in $Lines) {
        $script:written += $line.Length + 2
        Write-Output $line
    }
}

function Format-ErrorText($ErrorRecord) {
    $text = [string]$ErrorRecord.Exception.Message
    if (-not $text) { $text = $ErrorRecord.Exception.GetType().FullName }
    # Facility 0x13 is .NET's own (a plain throw); any other HRESULT is Windows speaking.
    for ($e = $ErrorRecord.Exception; $null -ne $e; $e = $e.InnerException) {
        if ($e.HResult -ne 0 -and ($e.HResult -band 0xFFFF0000) -ne 0x80130000) {
            return $text + (' (HRESULT 0x{0:X8})' -f $e.HResult)
        }
    }
    return $text
}

function Add-ReportError($ErrorRecord) {
    $text = Format-ErrorText $ErrorRecord
    $line = 0
    if ($null -ne $ErrorRecord.InvocationInfo) { $line = $ErrorRecord.InvocationInfo.ScriptLineNumber }
    # To stderr: the report must stay the last line on stdout.
    [Console]::Error.WriteLine(('script line {0}: {1}' -f $line, $text))
    if ($report.error) { $report.error = $report.error + '; then: ' + $text } else { $report.error = $text }
}

function Test-DiskSerial($Disk) {
    # Nitro and AWS PV 8.2.3+ give the volume ID without its dash, maybe followed by a suffix
    # such as _00000001.; IDs have 8 or 17 hex digits, so no fixed length will do.
    $prefix = [regex]::Escape($VolumeId.Replace('-', ''))
    return ([string]$Disk.SerialNumber).Trim() -match ('^' + $prefix + '([^0-9A-Za-z]|$)')
}

function Get-DiskStyle($Disk) {
    # The raw CIM value (1 MBR, 2 GPT): the Storage module's text for it may be localized.
    $style = [int]$Disk.CimInstanceProperties['PartitionStyle'].Value
    if ($style -eq 1) { return 'MBR' }
    if ($style -eq 2) { return 'GPT' }
    return 'unknown ({0})' -f $style
}

function Get-DiskIdentity($Disk) {
    $style = Get-DiskStyle $Disk
    if ($style -eq 'MBR' -and $null -ne $Disk.Signature) { return '0x{0:X8}' -f [uint32]$Disk.Signature }
    if ($style -eq 'GPT' -and $Disk.Guid) { return [string]$Disk.Guid }
    return ''
}

function ConvertTo-DiskReport($Disk) {
    return [pscustomobject]@{
        number = [int]$Disk.Number
        serial_number = [string]$Disk.SerialNumber
        partition_style = Get-DiskStyle $Disk
        identity = Get-DiskIdentity $Disk
        is_system = [bool]$Disk.IsSystem
        is_boot = [bool]$Disk.IsBoot
        was_offline = [bool]$Disk.IsOffline
        was_read_only = [bool]$Disk.IsReadOnly
        size = [long]$Disk.Size
    }
}

function Get-OurDisk {
    # Disk numbers are reused: once our disk is detached (a forced detach by the cleanup), the
    # next disk attached may get its number. Only the UniqueId taken when the disk was found
    # names it, and the serial number is checked again every time.
    $disk = @(Get-Disk -UniqueId $UniqueId)
    if ($disk.Count -ne 1 -or ([string]$disk[0].SerialNumber) -cne $Serial) {
        throw ('the disk with UniqueId {0} and serial number {1} is no longer attached; nothing changed' -f
            $UniqueId, $Serial)
    }
    return $disk[0]
}

function Set-OurDisk([string]$What, $Value) {
    # Every change to a disk goes through here, checked to be still ours just before it.
    $null = Get-OurDisk
    if ($What -eq 'IsOffline') { Set-Disk -UniqueId $UniqueId -IsOffline $Value }
    elseif ($What -eq 'IsReadOnly') { Set-Disk -UniqueId $UniqueId -IsReadOnly $Value }
    elseif ($What -eq 'Signature') { Set-Disk -UniqueId $UniqueId -Signature $Value }
    elseif ($What -eq 'Guid') { Set-Disk -UniqueId $UniqueId -Guid $Value }
    else { throw ('cannot set {0}' -f $What) }
}

function Get-DiskVolume {
    foreach ($p in @(Get-OurDisk | Get-Partition)) {
        $volume = $null
        # An MSR or extended partition has no volume: skip it, but let other errors through.
        try { $volume = Get-Volume -Partition $p }
        catch { if ($_.CategoryInfo.Category -ne 'ObjectNotFound') { throw } }
        if ($null -ne $volume) {
            [pscustomobject]@{
                number = [int]$p.PartitionNumber
                volume_path = [string]$volume.Path
                file_system = [string]$volume.FileSystem
                size = [long]$p.Size
            }
        }
    }
}

function Get-DiskShadowCopy($Volumes) {
    $paths = @($Volumes | ForEach-Object { $_.volume_path })
    foreach ($s in @(Get-CimInstance -ClassName Win32_ShadowCopy)) {
        if ($paths -notcontains $s.VolumeName) { continue }
        $installed = $s.InstallDate.ToUniversalTime()
        [pscustomobject]@{
            id = [string]$s.ID
            set_id = [string]$s.SetID
            volume_path = [string]$s.VolumeName
            install_date = $installed.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [cultureinfo]::InvariantCulture)
            persistent = [bool]$s.Persistent
            client_accessible = [bool]$s.ClientAccessible
        }
    }
}

function Set-ReportShadowCopy($Listing) {
    # Compact, so that 169-244 shadow copies fit in what SSM keeps (issue #14, finding 8): each
    # set ID and volume path once; a copy names its set by index and its volume by partition
    # number, under one-letter keys (docs/disk-tool.md). Python expands them back.
    $sets = New-Object 'System.Collections.Generic.List[string]'
    $copies = New-Object 'System.Collections.Generic.List[object]'
    foreach ($shadow in $Listing.shadows) {
        if (-not $sets.Contains($shadow.set_id)) { $sets.Add($shadow.set_id) }
        $volume = @($Listing.volumes | Where-Object { $_.volume_path -eq $shadow.volume_path })[0]
        $flags = ''
        if ($shadow.persistent) { $flags += 'p' }
        if ($shadow.client_accessible) { $flags += 'c' }
        $copies.Add([pscustomobject]@{
            i = $shadow.id
            s = $sets.IndexOf($shadow.set_id)
            p = $volume.number
            t = $shadow.install_date
            f = $flags
        })
    }
    $report.sets = $sets.ToArray()
    $report.copies = $copies.ToArray()
}

function Wait-DiskListing([int]$Number) {
    # $Number only names the disk in messages: Get-DiskVolume finds it by its UniqueId.
    # Volumes and their shadow copies show up a while after a disk comes online: look until
    # two looks five seconds apart agree.
    $seen = $null
    for ($look = 1; $look -le 12; $look++) {
        $volumes = @(Get-DiskVolume)
        $shadows = @(Get-DiskShadowCopy $volumes)
        $listing = @($volumes | ForEach-Object { $_.volume_path }) + @($shadows | ForEach-Object { $_.id })
        $listing = $listing -join ','
        if ($listing -ceq $seen) { return [pscustomobject]@{ volumes = $volumes; shadows = $shadows } }
        $seen = $listing
        Start-Sleep -Seconds 5
        $null = Update-HostStorageCache
    }
    throw ('the volumes and shadow copies of disk {0} did not settle in a minute' -f $Number)
}

function Get-CollidingDisk([string]$Identity) {
    # The online disks, other than ours, with this MBR signature or GPT GUID. Windows keeps a disk
    # whose identity an online disk has offline, and onlines it only by writing it a new one.
    @(Get-Disk | Where-Object {
        ([string]$_.UniqueId) -cne $UniqueId -and -not $_.IsOffline -and (Get-DiskIdentity $_) -eq $Identity
    } | ForEach-Object { [int]$_.Number })
}

$RawDiskSource = @'
using System;
using System.IO;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
public static class VssRestoreRawDisk {
    [DllImport("kernel32.dll", SetLastError = true, CharSet = CharSet.Unicode)]
    static extern SafeFileHandle CreateFile(string name, uint access, uint share, IntPtr security,
        uint disposition, uint flags, IntPtr template);
    static FileStream Open(int number, bool write) {
        SafeFileHandle handle = CreateFile(@"\\.\PhysicalDrive" + number,
            write ? 0xC0000000u : 0x80000000u, 3u, IntPtr.Zero, 3u, 0u, IntPtr.Zero);
        if (handle.IsInvalid) { throw new System.ComponentModel.Win32Exception(Marshal.GetLastWin32Error()); }
        return new FileStream(handle, write ? FileAccess.ReadWrite : FileAccess.Read, 4096, false);
    }
    public static byte[] Read(int number, long offset, int length) {
        using (FileStream disk = Open(number, false)) {
            byte[] data = new byte[length];
            disk.Seek(offset, SeekOrigin.Begin);
            int done = 0;
            while (done < length) {
                int got = disk.Read(data, done, length - done);
                if (got <= 0) { throw new IOException("short read"); }
                done += got;
            }
            return data;
        }
    }
    public static void Write(int number, long offset, byte[] data) {
        using (FileStream disk = Open(number, true)) {
            disk.Seek(offset, SeekOrigin.Begin);
            disk.Write(data, 0, data.Length);
            disk.Flush(true);
        }
    }
    public static uint Crc32(byte[] data, int length) {
        uint crc = 0xFFFFFFFFu;
        for (int i = 0; i < length; i++) {
            crc ^= data[i];
            for (int bit = 0; bit < 8; bit++) { crc = (crc & 1u) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1; }
        }
        return ~crc;
    }
}
'@

function Set-GptHeaderGuid([byte[]]$Header, [Guid]$Guid) {
    # The disk GUID at offset 56, then the header's CRC32 (offset 16) over HeaderSize bytes
    # (offset 12) computed with the CRC field zeroed (UEFI specification, GPT header).
    if ([Text.Encoding]::ASCII.GetString($Header, 0, 8) -cne 'EFI PART') { throw 'no GPT header where one should be' }
    [Array]::Copy($Guid.ToByteArray(), 0, $Header, 56, 16)
    $size = [BitConverter]::ToInt32($Header, 12)
    [Array]::Clear($Header, 16, 4)
    [Array]::Copy([BitConverter]::GetBytes([VssRestoreRawDisk]::Crc32($Header, $size)), 0, $Header, 16, 4)
}

function Get-RawIdentity($Disk) {
    $sector = [int]$Disk.LogicalSectorSize
    if ((Get-DiskStyle $Disk) -eq 'MBR') {
        return '0x{0:X8}' -f [BitConverter]::ToUInt32([VssRestoreRawDisk]::Read([int]$Disk.Number, 0, $sector), 440)
    }
    $primary = [VssRestoreRawDisk]::Read([int]$Disk.Number, $sector, $sector)
    $backup = [VssRestoreRawDisk]::Read([int]$Disk.Number, [BitConverter]::ToInt64($primary, 32) * $sector, $sector)
    $one = New-Object Guid (, [byte[]]$primary[56..71])
    $two = New-Object Guid (, [byte[]]$backup[56..71])
    if ($one -ne $two) { return 'primary {0}, backup {1}' -f $one, $two }
    return '{' + $one.ToString().ToUpperInvariant() + '}'
}

function Write-OfflineIdentity([string]$Identity) {
    # Windows sets a signature or GUID only on an online disk (MSFT_Disk SetAttributes: 41003
    # "the disk is offline"), and online this identity would collide with the online disk that
    # has it. So it goes to the disk's own sectors while the disk is offline and writable: the
    # MBR signature at byte 440 of sector 0, or the GPT disk GUID in both GPT headers with their
    # CRC32s. Read back from the sectors: nothing else says it is there.
    if (-not ('VssRestoreRawDisk' -as [type])) { Add-Type -TypeDefinition $RawDiskSource }
    $disk = Get-OurDisk
    if (-not $disk.IsOffline -or $disk.IsReadOnly) {
        throw ('disk {0} must be offline and writable to take back identity {1}' -f $disk.Number, $Identity)
    }
    $number = [int]$disk.Number
    $sector = [int]$disk.LogicalSectorSize
    if ($Identity.StartsWith('0x')) {
        $first = [VssRestoreRawDisk]::Read($number, 0, $sector)
        [Array]::Copy([BitConverter]::GetBytes([Convert]::ToUInt32($Identity.Substring(2), 16)), 0, $first, 440, 4)
        $writes = @(@(0, $first))
    } else {
        $primary = [VssRestoreRawDisk]::Read($number, $sector, $sector)
        $backupAt = [BitConverter]::ToInt64($primary, 32) * $sector
        $backup = [VssRestoreRawDisk]::Read($number, $backupAt, $sector)
        Set-GptHeaderGuid $primary ([Guid]$Identity)
        Set-GptHeaderGuid $backup ([Guid]$Identity)
        $writes = @(@($sector, $primary), @($backupAt, $backup))
    }
    foreach ($write in $writes) {
        # Still our disk, by UniqueId and serial, just before each write to its number.
        if ([int](Get-OurDisk).Number -ne $number) { throw ('disk {0} changed number; nothing more written' -f $number) }
        [VssRestoreRawDisk]::Write($number, [int64]$write[0], [byte[]]$write[1])
    }
    $now = Get-RawIdentity (Get-OurDisk)
    if ($now -ne $Identity) { throw ('disk {0} reads back identity {1} after writing {2}' -f $number, $now, $Identity) }
    $null = Update-HostStorageCache
    return $now
}

function Restore-DiskIdentity([int]$Number, [string]$Identity) {
    $disk = Get-OurDisk
    $now = Get-DiskIdentity $disk
    if ($now -eq $Identity) { return $now }
    $colliding = @(Get-CollidingDisk $Identity)
    if ($colliding.Count -eq 0) {
        # Only an online, writable disk takes a new signature or GUID.
        if ($disk.IsOffline) { Set-OurDisk 'IsOffline' $false }
        if ($disk.IsReadOnly) { Set-OurDisk 'IsReadOnly' $false }
        if ($Identity.StartsWith('0x')) {
            Set-OurDisk 'Signature' ([Convert]::ToUInt32($Identity.Substring(2), 16))
        } else {
            Set-OurDisk 'Guid' $Identity
        }
        $now = Get-DiskIdentity (Get-OurDisk)
    } elseif ($Action -eq 'Inspect' -or $LastAction -eq 'false') {
        # The identity of online disk(s) $colliding: while attached, the clone keeps the one
        # Windows gave it, so that a reboot cannot start the helper from it (the BCD and
        # MountedDevices name disks by signature/GUID). The last action puts it back.
        Write-Note ('disk {0} keeps identity {1} until the last action: {2} is that of disk(s) {3}' -f
            $Number, $now, $Identity, ($colliding -join ','))
        return $now
    } else {
        # The last action: offline first, then written to the sectors, and the workflow detaches
        # the disk at once. Writable for that (a revert left it so; a check set it read-only).
        if ((Get-OurDisk).IsReadOnly) { Set-OurDisk 'IsReadOnly' $false }
        if (-not (Get-OurDisk).IsOffline) { Set-OurDisk 'IsOffline' $true }
        $now = Write-OfflineIdentity $Identity
    }
    if ($now -ne $Identity) { throw ('disk {0} has identity {1} after putting back {2}' -f $Number, $now, $Identity) }
    return $now
}

function Get-RevertListing([string[]]$Paths) {
    # What `vssadmin query reverts /for=<volume>` (Windows Server) says of each volume, taken as
    # opaque text: its words are localized and not documented. A revert in progress on a volume
    # is listed for it; once it ends, the answer is again what it was before the revert began.
    foreach ($path in $Paths) {
        $global:LASTEXITCODE = $null
        $lines = @(& { $ErrorActionPreference = 'Continue'; & vssadmin.exe query reverts ('/for=' + $path) 2>&1 } |
            ForEach-Object { ([string]$_).Trim() } | Where-Object { $_ })
        $code = $global:LASTEXITCODE
        $global:LASTEXITCODE = $null
        if ($null -eq $code) { throw 'vssadmin query reverts did not run' }
        '{0}|{1}|{2}' -f $path, $code, ($lines -join ' / ')
    }
}

function Wait-RevertEnd([string[]]$Paths, [string[]]$Before) {
    # A revert may go on after DiskShadow returns (VSS QueryRevertStatus gives an IVssAsync, which
    # Microsoft's sample waits on). Until VSS lists none for the disk's volumes, nothing else is
    # done to the disk: no identity put back, no offline, no snapshot. Bounded: 60 minutes.
    $clock = [Diagnostics.Stopwatch]::StartNew()
    while ($true) {
        $now = @(Get-RevertListing $Paths)
        if (($now -join "`n") -ceq ($Before -join "`n")) { return [int]$clock.Elapsed.TotalSeconds }
        if ($clock.Elapsed.TotalMinutes -ge 60) {
            $script:reverting = $true
            throw ('VSS still lists a revert on the volumes of disk {0} after 60 minutes ({1}); the disk is left online as it is, since VSS goes on reverting it' -f
                $n, (($now | Select-Object -First 2) -join '; '))
        }
        Start-Sleep -Seconds 5
    }
}

function Get-RequestedDisk {
    # Revert and Check act on the disk Inspect found. Before anything changes, refuse a disk that
    # is no longer that one, a system or boot disk, and an identity that could not be put back.
    if (-not ($DiskNumber -and $DiskIdentity)) { throw ('{0} needs DiskNumber and DiskIdentity' -f $Action) }
    # The one look by number: from here on the disk is named by the UniqueId taken now.
    $disk = Get-Disk -Number ([int]$DiskNumber)
    $number = [int]$disk.Number
    $report.disk = ConvertTo-DiskReport $disk
    if (-not (Test-DiskSerial $disk)) {
        throw ('disk {0} has serial number {1}, not that of {2}' -f $number, $disk.SerialNumber, $VolumeId)
    }
    if ($disk.IsSystem -or $disk.IsBoot) { throw ('disk {0} is a system or boot disk; nothing done' -f $number) }
    $style = 'GPT'
    if ($DiskIdentity.StartsWith('0x')) { $style = 'MBR' }
    if ($report.disk.partition_style -ne $style) {
        throw ('disk {0} is not {1} like identity {2}' -f $number, $style, $DiskIdentity)
    }
    return $disk
}

function Open-Disk($Disk, [bool]$ReadOnly) {
    # Read-only first, so that nothing is written to the disk while we look. Should Windows refuse
    # that on an offline disk, the action fails here having changed nothing.
    # A disk whose identity an online disk has comes online only with a new one, which Windows
    # must write (impossible while read-only): read-only is cleared while it is offline, it comes
    # online, and only then is it made read-only again. Should Windows refuse to clear read-only
    # on an offline disk (MSFT_Disk SetAttributes: 41003), the action fails having changed nothing.
    $number = [int]$Disk.Number
    $colliding = @()
    if ($Disk.IsOffline) { $colliding = @(Get-CollidingDisk (Get-DiskIdentity $Disk)) }
    if ($colliding.Count -gt 0) {
        if ($Disk.IsReadOnly) { Set-OurDisk 'IsReadOnly' $false }
        Set-OurDisk 'IsOffline' $false
        if ($ReadOnly) { Set-OurDisk 'IsReadOnly' $true }
    } else {
        if ($ReadOnly -and -not $Disk.IsReadOnly) { Set-OurDisk 'IsReadOnly' $true }
        if ($Disk.IsOffline) { Set-OurDisk 'IsOffline' $false }
        if (-not $ReadOnly -and $Disk.IsReadOnly) { Set-OurDisk 'IsReadOnly' $false }
    }
    $now = Get-OurDisk
    Write-Note ('disk {0} online, read-only {1}; identity now {2}{3}' -f $number, $now.IsReadOnly, (Get-DiskIdentity $now),
        $(if ($colliding.Count -gt 0) { ' (its own collided with disk(s) ' + ($colliding -join ',') + ')' } else { '' }))
}

# chkdsk's exit codes (Microsoft's chkdsk page): 0 no errors were found; 1 errors were found
# and fixed; 2 disk cleanup was done, or not done because /f was not given; 3 the disk could
# not be checked, or errors were found and not fixed because /f was not given.
$ChkdskResults = @{ 0 = 'NoErrorsFound'; 1 = 'ErrorsFixed'; 2 = 'CleanupNeeded'; 3 = 'ErrorsFoundOrNotChecked' }

function Invoke-VolumeScan($Volume) {
    # Repair-Volume -Scan first (the online chkdsk /scan). On a read-only disk Windows may refuse
    # it (MSFT_Volume Repair: 43006, "cannot perform the requested operation when the drive is
    # read only"); then chkdsk with no switch at all, its read-only mode, which reads the volume
    # and writes nothing. -SpotFix, -OfflineScanAndFix and chkdsk /f /r /x /scan are never used:
    # a check changes nothing. A volume neither can scan is ScanImpossible: not a finding of
    # damage, and never a pass. Only NoErrorsFound passes.
    $scanner = 'Repair-Volume'
    $scanError = ''
    try {
        $result = (@(Repair-Volume -Path $Volume.volume_path -Scan) | ForEach-Object { [string]$_ }) -join ', '
        if (-not $result) { $result = '(no result)' }
    } catch {
        $scanner = 'chkdsk'
        $scanError = 'Repair-Volume: ' + (Format-ErrorText $_)
        try {
            $global:LASTEXITCODE = $null
            $lines = @(& { $ErrorActionPreference = 'Continue'; & chkdsk.exe $Volume.volume_path 2>&1 } |
                ForEach-Object { [string]$_ } | Where-Object { $_.Trim() })
            $code = $global:LASTEXITCODE
            $global:LASTEXITCODE = $null
            if ($null -ne $code -and $ChkdskResults.ContainsKey([int]$code)) { $result = $ChkdskResults[[int]$code] }
            else { $result = 'ScanImpossible' }
            if ($result -cne 'NoErrorsFound') {
                $scanError += ('; chkdsk exit code {0}: {1}' -f $code, (($lines | Select-Object -Last 3) -join ' / '))
            }
        } catch {
            $result = 'ScanImpossible'
            $scanError += '; chkdsk: ' + (Format-ErrorText $_)
        }
    }
    if ($scanError.Length -gt 400) { $scanError = $scanError.Substring(0, 400) }
    return [pscustomobject]@{
        number = [int]$Volume.number
        volume_path = $Volume.volume_path
        file_system = $Volume.file_system
        scanner = $scanner
        scan_result = $result
        scan_error = $scanError
        passed = ($result -ceq 'NoErrorsFound')
    }
}

# Who may change the validation script: SYSTEM, Administrators and TrustedInstaller. Anyone else
# who can write it, or replace it through its folder, would have it run here as SYSTEM.
$TrustedSids = @('S-1-5-18', 'S-1-5-32-544', 'S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464')
# On the script and its folder: any write, delete or change of permissions or owner (GENERIC_ALL
# and GENERIC_WRITE included); on the folders above: what lets one delete, rename or re-permit
# the folder below (creating an entry in C:\ does not replace anything under it).
$FileWriteRights = [int64](0x10000000 -bor 0x40000000 -bor 0x2 -bor 0x4 -bor 0x10 -bor 0x100 -bor 0x10000 -bor 0x40 -bor 0x40000 -bor 0x80000)
$AncestorWriteRights = [int64](0x10000000 -bor 0x10000 -bor 0x40 -bor 0x40000 -bor 0x80000)

function Get-ForeignWriter([string]$Path, [int64]$Rights) {
    # Allow entries that apply to this item itself (inherit-only ones apply to what is below it,
    # where they show again); deny entries are ignored, which can only make this stricter.
    $acl = Get-Acl -LiteralPath $Path
    $owner = (New-Object Security.Principal.NTAccount($acl.Owner)).Translate([Security.Principal.SecurityIdentifier]).Value
    if ($TrustedSids -notcontains $owner) { '{0} is owned by {1}' -f $Path, $acl.Owner }
    foreach ($rule in $acl.GetAccessRules($true, $true, [Security.Principal.SecurityIdentifier])) {
        if ($rule.AccessControlType -ne [Security.AccessControl.AccessControlType]::Allow) { continue }
        if (($rule.PropagationFlags -band [Security.AccessControl.PropagationFlags]::InheritOnly) -ne 0) { continue }
        if (([int64]$rule.FileSystemRights -band $Rights) -eq 0) { continue }
        $sid = [string]$rule.IdentityReference.Value
        if ($TrustedSids -notcontains $sid) { '{0} may be written by {1} ({2})' -f $Path, $sid, $rule.FileSystemRights }
    }
}

function Assert-TrustedScript([string]$Path) {
    # Refused before the disk is touched: the script, its folder and every folder above it.
    $item = Get-Item -LiteralPath $Path -Force
    $found = @(Get-ForeignWriter $item.FullName $FileWriteRights)
    $found += @(Get-ForeignWriter $item.DirectoryName $FileWriteRights)
    for ($folder = $item.Directory.Parent; $null -ne $folder; $folder = $folder.Parent) {
        $found += @(Get-ForeignWriter $folder.FullName $AncestorWriteRights)
    }
    if ($found.Count -gt 0) {
        throw ('validation script {0} could be changed by non-administrators: {1}; refused, nothing done' -f
            $Path, (($found | Select-Object -First 3) -join '; '))
    }
}

function Invoke-ValidationScript([string]$Path, [string[]]$VolumePath) {
    # The operator's script runs in a child powershell.exe -File, as the SSM agent runs ours:
    # whatever it does to its own process ([Environment]::Exit(3010), exit 3010, its preference
    # variables) ends there. Its exit code is data for the report and never becomes ours: 3010
    # would make the SSM agent reboot the helper. -File passes arguments as literal strings, so
    # the volume paths come as one string, separated by commas. A script that throws exits 1.
    $exe = Join-Path $env:SystemRoot 'System32\WindowsPowerShell\v1.0\powershell.exe'
    $lines = New-Object System.Collections.Generic.List[string]
    $global:LASTEXITCODE = $null
    try {
        & {
            $ErrorActionPreference = 'Continue'
            & $exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $Path -VolumePath ($VolumePath -join ',') *>&1
        } | Out-String -Stream -Width 240 | ForEach-Object { $lines.Add($_) }
        $code = $global:LASTEXITCODE
        if ($null -eq $code) { throw ('{0} did not run' -f $exe) }
        $code = [int]$code
    } catch {
        $code = 1
        $lines.Add((Format-ErrorText $_))
    }
    $global:LASTEXITCODE = $null
    # The tail only: SSM keeps 24,000 characters of stdout, and the report must fit in them.
    $tail = (@($lines | Where-Object { $_.Trim() }) | Select-Object -Last 20) -join "`n"
    if ($tail.Length -gt 2000) { $tail = $tail.Substring($tail.Length - 2000) }
    return [pscustomobject]@{
        script = $Path
        exit_code = $code
        passed = ($code -eq 0)
        output = $tail
    }
}

$report = [ordered]@{ schema = 2; action = $Action; volume_id = $VolumeId; ok = $false; error = $null; disk = $null }
if ($Action -eq 'Inspect') {
    $report.partitions = @(); $report.sets = @(); $report.copies = @()
} elseif ($Action -eq 'Revert') {
    $report.reverted = @(); $report.identity_restored = ''; $report.offline = $false
} else {
    $report.volumes = @(); $report.validation = $null; $report.passed = $false
    $report.identity_restored = ''; $report.offline = $false
}
$n = -1
$UniqueId = ''  # the disk, once found: its number may be given to another disk after a detach
$Serial = ''
$identity = ''  # the identity to put back: as found (Inspect) or as told (Revert, Check)
$touched = $false  # set just before the first change: from then on, finally puts the disk back
$reverting = $false  # VSS still reverts the disk: finally leaves it as it is
$scriptFile = $null
# The SSM agent runs up to 5 commands at once: one action at a time on this helper, whatever
# restore sent it. Another process's mutex left abandoned (its command cancelled) is ours.
$mutex = New-Object System.Threading.Mutex($false, 'Global\vss-restore-disktool')
$held = $false

try {
    try { $held = $mutex.WaitOne([TimeSpan]::FromMinutes(30)) }
    catch [System.Threading.AbandonedMutexException] { $held = $true }
    if (-not $held) { throw 'another disk tool command has held this helper for 30 minutes; nothing done' }
    if ($Action -eq 'Inspect') {
        for ($look = 1; $look -le 12; $look++) {
            $all = @(Get-Disk)
            $found = @($all | Where-Object { Test-DiskSerial $_ })
            if ($found.Count -gt 0) { break }
            # EC2 says "attached" before Windows lists the disk, and upstream a missing disk is
            # final: refresh the storage provider's cache and look again, for up to a minute.
            Start-Sleep -Seconds 5
            Update-HostStorageCache
        }
        if ($found.Count -ne 1) {
            $serials = ($all | ForEach-Object { '{0}={1}' -f $_.Number, $_.SerialNumber }) -join ', '
            throw ('{0} disks have the serial number of {1}, expected exactly one; disks seen: {2}' -f
                $found.Count, $VolumeId, $serials)
        }
        $disk = $found[0]
        $n = [int]$disk.Number
        $UniqueId = [string]$disk.UniqueId
        $Serial = [string]$disk.SerialNumber
        $report.disk = ConvertTo-DiskReport $disk
        # Taken before onlining, which rewrites a signature that collides with another disk's.
        $identity = $report.disk.identity
        if (-not $identity) {
            throw ('disk {0} has no MBR signature or GPT GUID (style {1})' -f $n, $report.disk.partition_style)
        }
        if ($disk.IsOffline -and -not ($disk.IsSystem -or $disk.IsBoot)) {
            $touched = $true
            Open-Disk $disk $true
        }
        $listing = Wait-DiskListing $n
        $report.partitions = $listing.volumes
        Set-ReportShadowCopy $listing
    } elseif ($Action -eq 'Revert') {
        if (-not $ShadowCopyIds) { throw 'Revert needs ShadowCopyIds' }
        $ids = @($ShadowCopyIds.Split(','))
        $identity = $DiskIdentity
        # A revert cannot be undone: refuse now rather than fail to put the identity back after.
        $disk = Get-RequestedDisk
        $n = [int]$disk.Number
        $UniqueId = [string]$disk.UniqueId
        $Serial = [string]$disk.SerialNumber
        $touched = $true
        Open-Disk $disk $false
        $listing = Wait-DiskListing $n
        $onDisk = @($listing.shadows | ForEach-Object { $_.id })
        $missing = @($ids | Where-Object { $onDisk -notcontains $_ })
        if ($missing.Count -gt 0) {
            throw ('shadow copies {0} are not on the volumes of disk {1} (these are: {2}); nothing reverted' -f
                ($missing -join ','), $n, ($onDisk -join ','))
        }
        # DiskShadow's revert takes only an ID, and a clone of an attached disk holds the same
        # shadow copies: each must exist once on this instance, on a volume only this disk has.
        $everyCopy = @(Get-CimInstance -ClassName Win32_ShadowCopy)
        $paths = @($listing.volumes | ForEach-Object { $_.volume_path })
        $accessPaths = @(Get-Partition | ForEach-Object { @($_.AccessPaths) })
        foreach ($id in $ids) {
            $copies = @($everyCopy | Where-Object { [string]$_.ID -eq $id })
            if ($copies.Count -ne 1) {
                throw ('shadow copy {0} exists {1} times on this instance, not once (a clone of an attached disk?); nothing reverted' -f
                    $id, $copies.Count)
            }
        }
        foreach ($path in $paths) {
            $owners = @($accessPaths | Where-Object { $_ -eq $path }).Count
            if ($owners -ne 1) {
                throw ('volume {0} of disk {1} belongs to {2} partitions on this instance, not one; nothing reverted' -f
                    $path, $n, $owners)
            }
        }
        # What VSS says of the volumes' reverts before ours: the answer to wait for after it.
        $idle = @(Get-RevertListing $paths)
        $scriptFile = [IO.Path]::GetTempFileName()
        # The context first, as Microsoft's revert sample sets it (the backup made persistent
        # shadow copies; a session starts in the default context). The closing exit keeps
        # DiskShadow from waiting for input after the script.
        Set-Content -LiteralPath $scriptFile -Value (@('set context persistent') + @($ids | ForEach-Object { "revert $_" }) + 'exit') -Encoding Ascii
        # Under Stop, a line DiskShadow writes to stderr would throw in mid-revert. Its exit
        # code is not trusted either: the shadow copies left over tell what happened.
        $output = @(& { $ErrorActionPreference = 'Continue'; & diskshadow.exe /s $scriptFile 2>&1 } |
            ForEach-Object { [string]$_ })
        Write-Note ($output | Select-Object -Last 40)
        $waited = Wait-RevertEnd $paths $idle
        Write-Note ('VSS lists no revert on the volumes of disk {0} ({1} s after DiskShadow returned)' -f $n, $waited)
        # A successful revert consumes its shadow copy.
        $left = @(Get-CimInstance -ClassName Win32_ShadowCopy | ForEach-Object { [string]$_.ID })
        $report.reverted = @($ids | Where-Object { $left -notcontains $_ })
        if ($report.reverted.Count -ne $ids.Count) {
            throw ('DiskShadow reverted {0} of {1} shadow copies: {2}' -f
                $report.reverted.Count, $ids.Count, (($output | Select-Object -Last 20) -join "`n"))
        }
    } elseif ($Action -eq 'Check') {
        $identity = $DiskIdentity
        $disk = Get-RequestedDisk
        $n = [int]$disk.Number
        $UniqueId = [string]$disk.UniqueId
        $Serial = [string]$disk.SerialNumber
        if ($ValidationScript -and -not (Test-Path -LiteralPath $ValidationScript -PathType Leaf)) {
            throw ('validation script {0} not found on this instance; nothing done' -f $ValidationScript)
        }
        if ($ValidationScript) { Assert-TrustedScript $ValidationScript }
        $touched = $true
        Open-Disk $disk $true
        if (-not (Get-OurDisk).IsReadOnly) { throw ('disk {0} is not read-only once online; nothing scanned' -f $n) }
        $scanned = @((Wait-DiskListing $n).volumes | Where-Object { @('NTFS', 'ReFS') -contains $_.file_system })
        foreach ($volume in $scanned) {
            $clock = [Diagnostics.Stopwatch]::StartNew()
            $scan = Invoke-VolumeScan $volume
            Write-Note ('{0} {1}: {2} ({3:0} s)' -f $scan.volume_path, $scan.file_system, $scan.scan_result, $clock.Elapsed.TotalSeconds)
            $report.volumes += $scan
        }
        if ($ValidationScript) {
            $clock = [Diagnostics.Stopwatch]::StartNew()
            $report.validation = Invoke-ValidationScript $ValidationScript @($scanned | ForEach-Object { $_.volume_path })
            Write-Note ('{0}: exit code {1} ({2:0} s)' -f $ValidationScript, $report.validation.exit_code, $clock.Elapsed.TotalSeconds)
        }
        # What the check found is in passed; ok (set below) only says that it ran.
        $failed = @($report.volumes | Where-Object { -not $_.passed })
        $validated = ($null -eq $report.validation) -or $report.validation.passed
        $report.passed = ($report.volumes.Count -gt 0) -and ($failed.Count -eq 0) -and $validated
    } else {
        throw ('unknown Action {0}' -f $Action)
    }
} catch {
    Add-ReportError $_
} finally {
    # One try per step, so that a failing step does not keep the disk from going offline.
    # Each step acts on the disk by its UniqueId, and only while its serial is still ours.
    # A disk VSS still reverts is left as it is (its error says so): taking it offline under a
    # revert is nowhere documented.
    if ($touched -and -not $reverting) {
        try { $restored = Restore-DiskIdentity $n $identity } catch { Add-ReportError $_; $restored = '' }
        if ($Action -ne 'Inspect') { $report.identity_restored = $restored }
        if ($Action -ne 'Revert') {
            # Read-only as found (a revert leaves it cleared). Before going offline: Windows sets
            # most disk attributes only on an online disk. A disk already offline (its identity
            # written back to its sectors) stays writable: the workflow detaches it next.
            try {
                $readOnly = $report.disk.was_read_only
                $disk = Get-OurDisk
                if (-not $disk.IsOffline -and $disk.IsReadOnly -ne $readOnly) { Set-OurDisk 'IsReadOnly' $readOnly }
            } catch { Add-ReportError $_ }
        }
        try {
            # Revert and Check always leave the disk offline; Inspect leaves it as it found it.
            $offline = ($Action -ne 'Inspect') -or $report.disk.was_offline
            if ($offline -and -not (Get-OurDisk).IsOffline) { Set-OurDisk 'IsOffline' $true }
        } catch { Add-ReportError $_ }
    }
    if ($Action -ne 'Inspect' -and $UniqueId) {
        try { $report.offline = [bool](Get-OurDisk).IsOffline } catch { Add-ReportError $_ }
    }
    if ($scriptFile) { Remove-Item -LiteralPath $scriptFile -Force -ErrorAction SilentlyContinue }
    # Last: the disk is back as it was before the next action may touch this helper's disks.
    if ($held) { $mutex.ReleaseMutex() }
    $mutex.Dispose()
}

$report.ok = ($null -eq $report.error)
$json = ConvertTo-Json -InputObject $report -Compress -Depth 8
if ($written + $json.Length + 2 -gt $StdoutKept) {
    # Cut, it would be no report at all: say so in one that fits, its lists left out (what a Revert
    # reverted stays: it cannot be undone).
    $listed = 0
    foreach ($name in @('partitions', 'copies', 'volumes')) {
        if ($report.Contains($name)) { $listed += @($report[$name]).Count; $report[$name] = @() }
    }
    if ($report.Contains('sets')) { $report.sets = @() }
    $text = ('the report ({0:N0} characters, {1} listed items) would not fit in the {2:N0} characters of stdout SSM keeps, after {3:N0} written before it' -f
        $json.Length, $listed, $StdoutKept, $written)
    if ($report.error) { $text = $report.error + '; then: ' + $text }
    $report.error = $text
    $report.ok = $false
    if ($report.Contains('passed')) { $report.passed = $false }
    $json = ConvertTo-Json -InputObject $report -Compress -Depth 8
}
Write-Output $json
# Never a child tool's exit code: 3010 would make the SSM agent reboot the instance.
if ($report.ok) { exit 0 }
exit 1
