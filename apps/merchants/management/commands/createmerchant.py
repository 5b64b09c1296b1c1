import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.merchants import roles, services


class Command(BaseCommand):
    help = 'Create a merchant and an API token; prints {"merchant": SLUG, "token": TOKEN}.'

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--staff", help="also create a staff login with this username")
        parser.add_argument("--password", help="password for --staff")
        parser.add_argument(
            "--role", choices=roles.ROLES, default=roles.OWNER, help="the --staff login's role (default: owner)"
        )
        parser.add_argument("--token-name", default="default")
        parser.add_argument(
            "--token-role", choices=roles.ROLES, default=roles.OPERATOR, help="the API token's role (default: operator)"
        )

    def handle(self, *args, **opts):
        if opts["staff"] and not opts["password"]:
            raise CommandError("--staff needs --password")
        try:
            with transaction.atomic():
                merchant = services.merchant_create(slug=opts["slug"], name=opts["name"])
                _, raw = services.api_token_create(merchant=merchant, name=opts["token_name"], role=opts["token_role"])
                if opts["staff"]:
                    services.staff_create(
                        merchant=merchant, username=opts["staff"], password=opts["password"], role=opts["role"]
                    )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({"merchant": merchant.slug, "token": raw}))
