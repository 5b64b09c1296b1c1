"""HTTP clients of the carriers, over the protocols in apps.fulfilment.carriers."""
