# vss-restore e2e kit: runs on the source during the backup. The kit pastes $Drive, $FilesJson
# (as write-files.ps1) and $WaitSeconds above this line. When the backup's shadow copy of the
# drive appears, it writes the files at once (DiskShadow has released the writers; the EBS
# snapshot comes seconds later and should hold them), then reads back through the shadow copy
# itself the SHA-256 of every file it holds in the kit's folder: the shadow-copy-time files.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$result = [ordered]@{ ok = $false; shadow_copy_id = ''; written_after_ms = -1; files = [ordered]@{}; error = $null }
$link = ''
try {
    $volumePath = [string](Get-Volume -DriveLetter $Drive).Path
    $before = @(Get-CimInstance -ClassName Win32_ShadowCopy | ForEach-Object { [string]$_.ID })
    $files = [Text.Encoding]::ASCII.GetString([Convert]::FromBase64String($FilesJson)) | ConvertFrom-Json
    $folder = Join-Path ($Drive + ':\') 'vss-restore-e2e'
    $deadline = (Get-Date).AddSeconds([int]$WaitSeconds)
    $shadow = $null
    while ($null -eq $shadow) {
        if ((Get-Date) -gt $deadline) { throw ('no new shadow copy of {0}: within {1} s' -f $Drive, $WaitSeconds) }
        $shadow = @(Get-CimInstance -ClassName Win32_ShadowCopy | Where-Object {
            [string]$_.VolumeName -eq $volumePath -and $before -notcontains [string]$_.ID
        }) | Select-Object -First 1
        if ($null -eq $shadow) { Start-Sleep -Milliseconds 100 }
    }
    $seen = Get-Date
    foreach ($file in $files.PSObject.Properties) {
        [IO.File]::WriteAllBytes((Join-Path $folder $file.Name), [Convert]::FromBase64String([string]$file.Value))
    }
    Write-VolumeCache -DriveLetter $Drive
    $result.written_after_ms = [int]((Get-Date) - $seen).TotalMilliseconds
    $result.shadow_copy_id = [string]$shadow.ID
    # The shadow copy's own files, through its device object (a directory link to it).
    $link = Join-Path $env:TEMP ('vss-restore-e2e-' + [guid]::NewGuid().ToString('N'))
    $null = cmd.exe /c mklink /d $link ([string]$shadow.DeviceObject + '\')
    foreach ($item in @(Get-ChildItem -LiteralPath (Join-Path $link 'vss-restore-e2e') -File)) {
        $result.files[$item.Name] = (Get-FileHash -LiteralPath $item.FullName -Algorithm SHA256).Hash.ToLowerInvariant()
    }
    $result.ok = $true
} catch {
    $result.error = $_.Exception.Message
} finally {
    if ($link -and (Test-Path -LiteralPath $link)) { cmd.exe /c rmdir $link | Out-Null }
}
Write-Output (ConvertTo-Json -InputObject $result -Compress -Depth 4)
if ($result.ok) { exit 0 }
exit 1
