from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "apps.inventory"
    label = "inventory"

    def ready(self) -> None:
        from apps.catalog.hooks import register_stock

        from .services import CatalogStockHooks

        register_stock(CatalogStockHooks())
