"""Strings of Django's admin templates that Django's own zh_Hans catalog lacks (Django 5.2): they
are marked here so ``scripts/messages.sh`` keeps them in the project catalog, which wins over
Django's (``LOCALE_PATHS``). Nothing imports this module; only the extractor reads it."""

from django.utils.translation import gettext_noop

DJANGO_ADMIN_GAPS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)
