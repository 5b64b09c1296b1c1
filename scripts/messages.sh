#!/usr/bin/env bash
# Refresh the zh-hans translation catalogs from the source, then compile them.
#   scripts/messages.sh            (needs GNU gettext: apt-get install gettext)
# An app with its own locale/ directory keeps its strings there (apps/<app>/locale); everything
# else (templates/, livecommerce/, apps without a catalog) is in the project catalog (locale/).
# tests/backoffice/test_i18n.py fails on an empty or fuzzy entry, a stale .mo, or English on a
# zh-hans admin page.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${VENV_PY:-$PWD/.venv/bin/python}"
ignores=(--ignore=.venv --ignore=var --ignore=tests --ignore=bench --ignore=staticfiles --ignore=node_modules)
for app in apps/*/; do
  app="${app%/}"
  if [ -d "$app/locale" ]; then
    ignores+=("--ignore=$app")
    (cd "$app" && DJANGO_SETTINGS_MODULE= "$PY" -P -m django makemessages -l zh_Hans --no-location --no-obsolete -v 0)
    (cd "$app" && DJANGO_SETTINGS_MODULE= "$PY" -P -m django compilemessages -l zh_Hans -v 0)
  fi
done
DJANGO_SETTINGS_MODULE= "$PY" -P -m django makemessages -l zh_Hans --no-location --no-obsolete -v 0 "${ignores[@]}"
DJANGO_SETTINGS_MODULE= "$PY" -P -m django compilemessages -l zh_Hans -v 0 --ignore=.venv --ignore='apps/*'
echo "catalogs refreshed; fill every empty msgstr, then run this again to compile"
