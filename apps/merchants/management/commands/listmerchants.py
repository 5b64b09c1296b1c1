import json

from django.core.management.base import BaseCommand

from apps.merchants.selectors import merchant_list


class Command(BaseCommand):
    help = "List the merchants with their staff logins (--json: one JSON array, for scripts)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON array")

    def handle(self, *args, **opts):
        merchants = list(merchant_list())
        if opts["json"]:
            rows = [
                {
                    "slug": m.slug,
                    "name": m.name,
                    "active": m.is_active,
                    "staff": [{"username": ms.user.get_username(), "role": ms.role} for ms in m.memberships.all()],
                }
                for m in merchants
            ]
            self.stdout.write(json.dumps(rows, ensure_ascii=False))
            return
        if not merchants:
            self.stdout.write(
                "no merchants yet: python manage.py createmerchant SLUG --name NAME --staff USER --password PASSWORD"
            )
        for m in merchants:
            staff = ", ".join(f"{ms.user.get_username()} ({ms.role})" for ms in m.memberships.all())
            state = "" if m.is_active else "  [inactive]"
            self.stdout.write(f"{m.slug}  {m.name}{state}  staff: {staff or 'no staff logins'}")
