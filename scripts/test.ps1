# Windows: run what CI runs (lint, format check, tests), setting up .venv first when needed (scripts/venv.ps1).
#   powershell -ExecutionPolicy Bypass -File scripts\test.ps1 -m "not slow"
# Extra arguments go to pytest. Browser tests need Chromium at the path tests/browser.py names; without it they skip.
Set-Location (Split-Path -Parent $PSScriptRoot)
. (Join-Path $PSScriptRoot "venv.ps1")
Initialize-Venv @("requirements-dev.txt")
$ruff = Join-Path $PWD ".venv\Scripts\ruff.exe"
& $ruff check .
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& $ruff format --check .
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
# Test files run in parallel processes (pytest-xdist), as in scripts/test.sh: one per core, at most 4.
$Processes = if ($env:LAB_TEST_PROCESSES) { $env:LAB_TEST_PROCESSES } else { [Math]::Min([Environment]::ProcessorCount, 4) }
& $VenvPython -m pytest -n $Processes --dist loadfile --no-loadscope-reorder @args
exit $LASTEXITCODE
