import json

from django.core.management.base import BaseCommand

from apps.orders.services.ledger import ledger_checkpoint


class Command(BaseCommand):
    help = (
        "Sign a checkpoint of every merchant's order ledger that moved since its last one (appended to "
        "LEDGER_CHECKPOINT_DIR); exits 1 when a chain does not verify and was not signed."
    )

    def handle(self, *args, **opts):
        run = ledger_checkpoint()
        if run.busy:
            self.stdout.write("another checkpoint run holds the lock (it signs what moved); nothing done")
            return
        for line in run.written:
            self.stdout.write(json.dumps(line, sort_keys=True))
        for p in run.problems:
            self.stderr.write(f"NOT SIGNED: {p}")
        if run.problems:
            raise SystemExit(1)
        self.stdout.write(f"{len(run.written)} checkpoint(s) written")
