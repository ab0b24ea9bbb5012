# vss-restore e2e kit: write the kit's files on the source. The kit pastes $Drive (a letter)
# and $FilesJson (base64 of {"name": "base64 of the bytes"}) above this line, each checked by
# a pattern in e2e/aws.py. Prints one JSON line: the SHA-256 of each file as written.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$result = [ordered]@{ ok = $false; files = [ordered]@{}; error = $null }
try {
    $folder = Join-Path ($Drive + ':\') 'vss-restore-e2e'
    $null = New-Item -ItemType Directory -Path $folder -Force
    $files = [Text.Encoding]::ASCII.GetString([Convert]::FromBase64String($FilesJson)) | ConvertFrom-Json
    foreach ($file in $files.PSObject.Properties) {
        $path = Join-Path $folder $file.Name
        [IO.File]::WriteAllBytes($path, [Convert]::FromBase64String([string]$file.Value))
        $result.files[$file.Name] = (Get-FileHash -LiteralPath $path -Algorithm SHA256).Hash.ToLowerInvariant()
    }
    # On the disk, not only in the cache: a snapshot taken from now on holds them.
    Write-VolumeCache -DriveLetter $Drive
    $result.ok = $true
} catch {
    $result.error = $_.Exception.Message
}
Write-Output (ConvertTo-Json -InputObject $result -Compress -Depth 4)
if ($result.ok) { exit 0 }
exit 1
