from apps.core.commands import RedisCommand
from apps.orders.tasks import expire_due_orders


class Command(RedisCommand):
    help = "Cancel unpaid orders whose payment deadline passed (one pass)."

    def handle(self, *args, **opts):
        self.stdout.write(f"expired {expire_due_orders()} order(s)")
