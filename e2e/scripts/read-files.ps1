# vss-restore e2e kit: runs on the helper. The kit pastes $VolumeId above this line. Finds the
# disk whose serial number is that EBS volume (never any other disk), brings it online as it
# arrived (read-only: nothing is written to it), prints the SHA-256 of every file in the kit's
# folder on its volumes, and takes it offline again.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$result = [ordered]@{ ok = $false; disk = -1; files = [ordered]@{}; error = $null }
$disk = $null
try {
    $serial = 'vol' + $VolumeId.Substring(4)
    $deadline = (Get-Date).AddSeconds(300)
    while ($null -eq $disk) {
        $disk = @(Get-Disk | Where-Object { ([string]$_.SerialNumber).Trim().StartsWith($serial) }) | Select-Object -First 1
        if ($null -eq $disk) {
            if ((Get-Date) -gt $deadline) { throw ('no disk with serial {0} after 300 s' -f $serial) }
            Start-Sleep -Seconds 2
        }
    }
    $result.disk = [int]$disk.Number
    if ($disk.IsOffline) { Set-Disk -Number $disk.Number -IsOffline $false }
    foreach ($partition in @(Get-Partition -DiskNumber $disk.Number | Where-Object { $_.Type -eq 'Basic' })) {
        if (-not ([string]$partition.DriveLetter -match '^[A-Za-z]$')) {
            Add-PartitionAccessPath -DiskNumber $disk.Number -PartitionNumber $partition.PartitionNumber -AssignDriveLetter
            $partition = Get-Partition -DiskNumber $disk.Number -PartitionNumber $partition.PartitionNumber
        }
        $folder = Join-Path ([string]$partition.DriveLetter + ':\') 'vss-restore-e2e'
        if (-not (Test-Path -LiteralPath $folder)) { continue }
        foreach ($item in @(Get-ChildItem -LiteralPath $folder -File)) {
            $result.files[$item.Name] = (Get-FileHash -LiteralPath $item.FullName -Algorithm SHA256).Hash.ToLowerInvariant()
        }
    }
    $result.ok = $true
} catch {
    $result.error = $_.Exception.Message
} finally {
    if ($null -ne $disk) {
        try { Set-Disk -Number $disk.Number -IsOffline $true } catch { [Console]::Error.WriteLine($_.Exception.Message) }
    }
}
Write-Output (ConvertTo-Json -InputObject $result -Compress -Depth 4)
if ($result.ok) { exit 0 }
exit 1
