# Sourced by scripts/run and scripts/test: a virtualenv in .venv with the pinned requirements.
# pip runs again only when a requirements file changed since the last install.
ensure_venv() {
    local wanted="$1" python="${PYTHON:-python3}" stamp=".venv/.installed"
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    fi
    local digest
    digest="$wanted:$(cat requirements*.txt | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ] || ! grep -qxF "$digest" "$stamp"; then
        .venv/bin/python -m pip install -q --disable-pip-version-check -r "$wanted"
        echo "$digest" >> "$stamp"
    fi
}
