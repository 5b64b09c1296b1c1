from django.core.management.base import BaseCommand

from apps.orders.services.ledger import ledger_verify


class Command(BaseCommand):
    help = (
        "Verify every merchant's order ledger: the keyed hash chain, its head, its signed checkpoints "
        "(LEDGER_CHECKPOINT_DIR) and that every order's status is its last event; exits 1 naming each problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("--merchant", type=int)

    def handle(self, *args, **opts):
        problems = ledger_verify(merchant_id=opts["merchant"])
        if problems:
            for p in problems:
                self.stderr.write(f"BROKEN: {p}")
            raise SystemExit(1)
        self.stdout.write("ledger intact")
