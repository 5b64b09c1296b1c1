from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from django.contrib import admin

        # The back office's name in the header, the window title and on its home page.
        admin.site.site_header = _("livecommerce back office")
        admin.site.site_title = _("livecommerce back office")
        admin.site.index_title = _("Home")
        admin.site.site_url = "/"
