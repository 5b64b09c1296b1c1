from django.apps import AppConfig


class FulfilmentConfig(AppConfig):
    name = "apps.fulfilment"
    label = "fulfilment"
