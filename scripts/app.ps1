# Windows: start the app on http://localhost:8501, setting up .venv first when needed (scripts/venv.ps1).
#   powershell -ExecutionPolicy Bypass -File scripts\app.ps1
# Point CIFAR10_DIR at a cifar-10-batches-py folder first ($env:CIFAR10_DIR = "..\shared\data\cifar-10-batches-py");
# without it the app lets Keras download CIFAR-10 (online only). Extra arguments go to streamlit.
Set-Location (Split-Path -Parent $PSScriptRoot)
. (Join-Path $PSScriptRoot "venv.ps1")
Initialize-Venv
& (Join-Path $PWD ".venv\Scripts\streamlit.exe") run streamlit_app.py @args
exit $LASTEXITCODE
