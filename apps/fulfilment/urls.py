from django.urls import path

from . import views

app_name = "fulfilment"

urlpatterns = [
    path("o/<str:public_id>/refund/", views.buyer_refund, name="buyer-refund"),
    path(
        "o/<str:public_id>/refund/<str:refund_id>/withdraw/", views.buyer_refund_withdraw, name="buyer-refund-withdraw"
    ),
    path("hooks/payments/refunds", views.refund_callback, name="refund-callback"),
    path("hooks/carriers/<str:carrier>/<str:push_token>", views.carrier_push, name="carrier-push"),
]
