# Dot-sourced by scripts/app.ps1 and scripts/test.ps1: make .venv ready to use (Windows PowerShell 5.1 or PowerShell 7).
# Native programs' exit codes are checked one by one ($LASTEXITCODE): with $ErrorActionPreference = "Stop",
# Windows PowerShell 5.1 would stop at the first warning pip writes to stderr.
# The same steps as scripts/venv.sh:
# 1. A complete .venv (its Python runs, is a version we support, and has pip) is kept; a half-made one is made again.
# 2. pip runs only when something is missing: the fingerprint of pyproject.toml and the requirement files kept inside
#    .venv matches, or every declared dependency is found installed (scripts/deps.py), and the app starts offline.

$SupportedPythons = @("3.11", "3.12", "3.13")  # TensorFlow 2.21 has wheels for 3.10-3.13; the code needs 3.11 or newer
# Full paths (the scripts run from the project's root): PowerShell runs a program by a full path as it is.
$VenvPython = Join-Path $PWD ".venv\Scripts\python.exe"
$Stamp = Join-Path $PWD ".venv\cifar10-lab-requirements.sha256"

function Get-PythonVersion([string[]]$Command) {
    # "3.12" for a working interpreter, $null otherwise. $Command is e.g. @("py", "-3.12") or @("python").
    try {
        $exe = $Command[0]
        $rest = @($Command | Select-Object -Skip 1)
        $version = & $exe @rest -c "import sys; print('%d.%d' % sys.version_info[:2])" 2>$null
        if ($LASTEXITCODE -eq 0) { return "$version".Trim() }
    } catch {}
    return $null
}

function Find-Python {
    # The first supported interpreter: $env:PYTHON if set, else the py launcher's 3.13 ... 3.11, else python.
    if ($env:PYTHON) { $candidates = @(, @($env:PYTHON)) }
    else { $candidates = @(@("py", "-3.13"), @("py", "-3.12"), @("py", "-3.11"), @("python")) }
    $found = @()
    foreach ($candidate in $candidates) {
        $version = Get-PythonVersion $candidate
        if ($SupportedPythons -contains $version) { return , $candidate }
        if ($version) { $found += "$($candidate -join ' ') ($version)" }
    }
    $seen = if ($found) { $found -join ", " } else { "no python on PATH" }
    Write-Host "CIFAR-10 Lab needs Python 3.11, 3.12 or 3.13 (TensorFlow 2.21 publishes wheels for 3.10 to 3.13," -ForegroundColor Red
    Write-Host "and this code uses Python 3.11 features). Found: $seen." -ForegroundColor Red
    Write-Host "Install one from python.org (or: winget install Python.Python.3.12), or name it: `$env:PYTHON = 'C:\path\python.exe'" -ForegroundColor Red
    exit 1
}

function Test-VenvComplete {
    if (-not (Test-Path $VenvPython)) { return $false }
    if ($SupportedPythons -notcontains (Get-PythonVersion @($VenvPython))) { return $false }
    & $VenvPython -m pip --version *> $null
    return ($LASTEXITCODE -eq 0)
}

function Initialize-Venv([string[]]$ExtraFiles = @()) {
    if ((Test-Path .venv) -and -not (Test-VenvComplete)) {
        Write-Host "The .venv folder is incomplete or made with an unsupported Python: making it again."
        Remove-Item -Recurse -Force .venv
    }
    if (-not (Test-Path .venv)) {
        $python = Find-Python
        $exe = $python[0]
        $rest = @($python | Select-Object -Skip 1)
        Write-Host "Creating .venv with $($python -join ' ')"
        & $exe @rest -m venv .venv
        if ($LASTEXITCODE -ne 0 -or -not (Test-VenvComplete)) {
            if (Test-Path .venv) { Remove-Item -Recurse -Force .venv }
            Write-Host "Could not create .venv with $($python -join ' '): reinstall Python from python.org with pip included." -ForegroundColor Red
            exit 1
        }
    }
    # TensorFlow's CPU build (there is no GPU build for native Windows: use WSL 2 and LAB_GPU=1 bash scripts/app.sh).
    $files = @("requirements.txt") + $ExtraFiles
    $wanted = (& $VenvPython scripts/deps.py hash @files | Out-String).Trim()
    if ((Test-Path $Stamp) -and ((Get-Content $Stamp -Raw).Trim() -eq $wanted)) { return }  # no pip, no network
    & $VenvPython scripts/deps.py installed @files | Out-Null
    if ($LASTEXITCODE -ne 0) {
        Write-Host "Installing the requirements ($($files -join ' ')) into .venv"
        $arguments = @()
        foreach ($file in $files) { $arguments += @("-r", $file) }
        & $VenvPython -m pip install -q --disable-pip-version-check @arguments
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
    Set-Content -Path $Stamp -Value $wanted -Encoding ascii
}
