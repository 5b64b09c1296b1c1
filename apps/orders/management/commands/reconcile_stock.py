import json

from apps.core.commands import RedisCommand
from apps.orders.placement.gate.reconcile import reconcile_all


class Command(RedisCommand):
    help = "Compare the Redis gate with the database for every active listing and repair drift."

    def add_arguments(self, parser):
        parser.add_argument("--listing", type=int, action="append", help="only these listing ids")

    def handle(self, *args, **opts):
        result = reconcile_all(listing_ids=opts["listing"])
        self.stdout.write(json.dumps(result, default=str))
