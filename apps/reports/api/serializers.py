"""The post-show report as JSON: the rollup's figures (``apps.reports.figures``) with their types,
so the schema documents them. Money is a decimal string (exact), rates are decimal strings."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from apps.core.api import DateField, DateTimeField

MONEY_HELP = "CNY, a decimal string (exact)."
RATE_HELP = "A share, a decimal string with 4 places ('0.8125')."


class ReportRefundsSerializer(serializers.Serializer):
    orders = serializers.IntegerField(help_text="Paid orders that owe money back.")
    amount = serializers.CharField(help_text=MONEY_HELP)
    paid_back = serializers.CharField(help_text=MONEY_HELP)


class ReportRatesSerializer(serializers.Serializer):
    paid = serializers.CharField(help_text=RATE_HELP)
    cancelled = serializers.CharField(help_text=RATE_HELP)
    expired = serializers.CharField(help_text=RATE_HELP)
    refund = serializers.CharField(help_text="Refunded paid orders / paid orders, a decimal string.")


class ReportMinuteSerializer(serializers.Serializer):
    minute = serializers.IntegerField(help_text="Minutes since the show started.")
    orders = serializers.IntegerField()
    paid = serializers.IntegerField()
    gmv = serializers.CharField(help_text=MONEY_HELP)


class ReportCitySerializer(serializers.Serializer):
    city = serializers.CharField()
    paid = serializers.IntegerField()
    gmv = serializers.CharField(help_text=MONEY_HELP)


class ReportRegionSerializer(serializers.Serializer):
    province = serializers.CharField(help_text="'?' when the address had none.")
    paid = serializers.IntegerField()
    gmv = serializers.CharField(help_text=MONEY_HELP)
    cities = ReportCitySerializer(many=True)


class ReportBuyersSerializer(serializers.Serializer):
    buyers = serializers.IntegerField(help_text="Distinct buyers of paid orders.")
    new = serializers.IntegerField()
    returning = serializers.IntegerField(help_text="Paid an order of the merchant before the show started.")
    repeat = serializers.IntegerField(help_text="Paid 2 or more orders in this show.")
    repeat_rate = serializers.CharField(help_text=RATE_HELP)


class ReportChannelSerializer(serializers.Serializer):
    channel = serializers.CharField(help_text="storefront, api, douyin, kuaishou or taobao")
    orders = serializers.IntegerField()
    paid = serializers.IntegerField()
    gmv = serializers.CharField(help_text=MONEY_HELP)


class ReportRefusedSerializer(serializers.Serializer):
    closed = serializers.IntegerField(help_text="Asked before the listing opened or after it closed.")
    over_limit = serializers.IntegerField(help_text="Asked for more than the per-buyer limit allows.")
    sold_out = serializers.IntegerField(help_text="Asked when fewer units were left than wanted.")


class ReportListingFiguresSerializer(serializers.Serializer):
    listing = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    price = serializers.CharField(help_text="The flash price, CNY.")
    quota = serializers.IntegerField()
    orders = serializers.IntegerField()
    paid = serializers.IntegerField()
    units = serializers.IntegerField(help_text="Units of paid orders.")
    gmv = serializers.CharField(help_text=MONEY_HELP)
    paid_rate = serializers.CharField(help_text=RATE_HELP)
    attempts = serializers.IntegerField(
        required=False,
        help_text="Order attempts the flash-sale gate answered for the listing: holds taken and refusals "
        "(absent in reports computed before the gate counted them).",
    )
    refused = ReportRefusedSerializer(required=False, help_text="The gate's refusals, by reason.")
    conversion = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="orders / attempts, 4 places; null when the gate counted no attempt (generated history, or "
        "orders taken while Redis was away).",
    )
    sold_out_s = serializers.FloatField(
        allow_null=True, help_text="Seconds from opening until the orders had taken the whole quota."
    )
    curve = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        help_text="[seconds since opening, cumulative units taken], at most 60 points.",
    )


class ReportUnlistedSerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    paid = serializers.IntegerField()
    units = serializers.IntegerField()
    gmv = serializers.CharField(help_text=MONEY_HELP)


class ReportCategoryFiguresSerializer(serializers.Serializer):
    category = serializers.CharField(help_text="The products' category; empty for products without one.")
    orders = serializers.IntegerField()
    paid = serializers.IntegerField()
    units = serializers.IntegerField()
    gmv = serializers.CharField(help_text="Its lines' totals in paid orders (no freight), CNY.")


class ReportRiskSerializer(serializers.Serializer):
    allowed = serializers.IntegerField()
    held = serializers.IntegerField(help_text="Orders held for review.")
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    blocked = serializers.IntegerField(help_text="Attempts refused (no order).")


class ReportFiguresSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField(allow_null=True)
    orders = serializers.IntegerField(help_text="Every order of the show.")
    paid = serializers.IntegerField()
    pending = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    expired = serializers.IntegerField(help_text="Cancelled because the payment deadline passed.")
    units = serializers.IntegerField()
    gmv = serializers.CharField(help_text="Totals of the paid orders (freight included), CNY.")
    avg_basket = serializers.CharField(help_text=MONEY_HELP)
    refunds = ReportRefundsSerializer()
    net = serializers.CharField(help_text="gmv minus refunds.amount, CNY.")
    rates = ReportRatesSerializer()
    by_minute = ReportMinuteSerializer(many=True)
    regions = ReportRegionSerializer(many=True)
    buyers = ReportBuyersSerializer()
    channels = ReportChannelSerializer(many=True)
    listings = ReportListingFiguresSerializer(many=True)
    unlisted = ReportUnlistedSerializer(help_text="Lines no listing of the show sold (a platform's SKU not on air).")
    categories = ReportCategoryFiguresSerializer(many=True)
    risk = ReportRiskSerializer()


class SessionReportSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="session_id", help_text="The show's id.")
    title = serializers.CharField(source="session.title")
    streamer = serializers.CharField()
    status = serializers.CharField(source="session.status")
    starts_at = serializers.DateTimeField(allow_null=True)
    hours_on_air = serializers.DecimalField(max_digits=8, decimal_places=3, coerce_to_string=True)
    computed_at = serializers.DateTimeField()
    figures = ReportFiguresSerializer()


class SessionReportSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="session_id", help_text="The show's id.")
    title = serializers.CharField(source="session.title")
    streamer = serializers.CharField()
    starts_at = serializers.DateTimeField(allow_null=True)
    orders = serializers.IntegerField()
    paid = serializers.IntegerField()
    units = serializers.IntegerField()
    gmv = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    refunded = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    computed_at = serializers.DateTimeField()


class ReportSlotQuerySerializer(serializers.Serializer):
    since = DateField(required=False, help_text="Only shows that started on or after this day (2000-2099).")
    min_shows = serializers.IntegerField(
        required=False, default=3, min_value=1, max_value=100, help_text="Shows a slot needs before it is recommended."
    )


class ReportSlotFiguresSerializer(serializers.Serializer):
    shows = serializers.IntegerField(help_text="Shows on air in it (the sample size).")
    hours_on_air = serializers.CharField()
    orders = serializers.IntegerField()
    paid = serializers.IntegerField()
    gmv = serializers.CharField(help_text=MONEY_HELP)
    gmv_per_hour = serializers.CharField(help_text="GMV per hour on air, CNY: what the ranking uses.")
    conversion = serializers.CharField(help_text="Paid / orders, " + RATE_HELP)


class ReportSlotCellSerializer(ReportSlotFiguresSerializer):
    weekday = serializers.IntegerField(help_text="0 Monday ... 6 Sunday, in `timezone`.")
    hour = serializers.IntegerField(help_text="0-23, in `timezone`.")


class ReportStreamerSlotSerializer(ReportSlotFiguresSerializer):
    streamer = serializers.CharField()
    units = serializers.IntegerField()


class ReportCategorySlotSerializer(ReportSlotFiguresSerializer):
    category = serializers.CharField(help_text="'?' for products without a category.")
    units = serializers.IntegerField()


class ReportSlotAnalysisSerializer(serializers.Serializer):
    shows = serializers.IntegerField()
    min_shows = serializers.IntegerField()
    timezone = serializers.CharField()
    cells = ReportSlotCellSerializer(many=True, help_text="Every weekday × hour a show was on air in.")
    streamers = ReportStreamerSlotSerializer(many=True)
    categories = ReportCategorySlotSerializer(many=True)
    recommended = ReportSlotCellSerializer(many=True, help_text="The best cells by GMV per hour with enough shows.")
    too_few_shows = ReportSlotCellSerializer(many=True, help_text="Cells that sold but have too few shows to say.")


class ReportForecastQuerySerializer(serializers.Serializer):
    sku = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=50,
        help_text="The SKU codes of the planned show (repeat the parameter: ?sku=A&sku=B).",
    )  # fmt: skip
    streamer = serializers.CharField(max_length=100)
    starts_at = DateTimeField(help_text="When the show starts (ISO 8601, years 2000-2099).")
    hours = serializers.DecimalField(
        max_digits=4, decimal_places=2, min_value=Decimal("0.25"), max_value=Decimal("12"), default=Decimal("2")
    )


class ReportSkuForecastSerializer(serializers.Serializer):
    sku = serializers.CharField()
    category = serializers.CharField()
    expected = serializers.FloatField(help_text="Units expected to sell (paid).")
    low = serializers.IntegerField(help_text="The 80 % interval's bottom.")
    high = serializers.IntegerField(help_text="The 80 % interval's top.")
    quota = serializers.IntegerField(help_text="The quota to set: the interval's top.")
    last_show = serializers.IntegerField(
        allow_null=True, help_text="Units it sold in its last show (null: never shown)."
    )
    shows = serializers.IntegerField(help_text="Past shows it was in.")
    on_hand = serializers.IntegerField()
    restock = serializers.IntegerField(help_text="Units to add before the show: quota less on hand, at least 0.")


class ReportForecastSerializer(serializers.Serializer):
    shows = serializers.IntegerField(help_text="Past shows the forecast learns from.")
    enough = serializers.BooleanField(help_text="False: too few past shows to forecast (`skus` is empty).")
    min_shows = serializers.IntegerField()
    skus = ReportSkuForecastSerializer(many=True)


class ReportSuggestionsQuerySerializer(serializers.Serializer):
    min_shows = serializers.IntegerField(
        required=False, default=3, min_value=1, max_value=100,
        help_text="Shows a slot or streamer needs before it is suggested for featuring.",
    )  # fmt: skip
    top = serializers.IntegerField(
        required=False, default=8, min_value=1, max_value=30, help_text="SKUs to suggest a slot for."
    )


class ReportRestockShowSerializer(serializers.Serializer):
    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field named "source": the metaclass takes it
        choices=["scheduled", "recent"],
        help_text="scheduled: the next planned show's listings; recent: no show is planned, so the SKUs sold most "
        "in the last 10 shows at the next recommended slot.",
    )
    session = serializers.IntegerField(allow_null=True, help_text="The planned show's id (source scheduled).")
    title = serializers.CharField()
    streamer = serializers.CharField()
    starts_at = serializers.DateTimeField()
    hours = serializers.FloatField(help_text="Hours on air assumed: the shop's median show.")
    skus = serializers.IntegerField(help_text="SKUs in the show.")


class ReportRestockItemSerializer(ReportSkuForecastSerializer):
    name = serializers.CharField()
    price = serializers.CharField(help_text="The flash price, CNY.")
    gmv_at_stake = serializers.CharField(help_text="restock × price: sales the missing stock would lose, CNY.")


class ReportRestockSerializer(serializers.Serializer):
    show = ReportRestockShowSerializer()
    items = ReportRestockItemSerializer(
        many=True, help_text="SKUs whose suggested quota exceeds their stock on hand, the largest restock first."
    )
    covered = serializers.IntegerField(help_text="SKUs of the show whose stock covers their quota.")


class ReportFeatureSlotSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(help_text="0 Monday ... 6 Sunday, China time.")
    hour = serializers.IntegerField(help_text="The show's start hour, China time.")
    streamer = serializers.CharField()
    expected = serializers.FloatField(help_text="Units the model forecasts for the SKU there.")
    gmv = serializers.CharField(help_text="expected × price, CNY.")
    slot_shows = serializers.IntegerField(help_text="Shows on air in that weekday × hour (the time-slot analysis).")
    streamer_shows = serializers.IntegerField(help_text="Shows of that streamer.")


class ReportUsualSlotSerializer(ReportFeatureSlotSerializer):
    sku_slot_shows = serializers.IntegerField(help_text="The SKU's shows that started in that slot.")
    sku_streamer_shows = serializers.IntegerField(help_text="The SKU's shows with that streamer.")


class ReportFeatureItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    price = serializers.CharField(help_text="Its last flash price, CNY.")
    shows = serializers.IntegerField(help_text="Past shows it was in.")
    best = ReportFeatureSlotSerializer(help_text="The slot and streamer with the highest forecast.")
    usual = ReportUsualSlotSerializer(help_text="Its most frequent start slot and streamer, and the forecast there.")
    uplift_units = serializers.FloatField(help_text="best.expected - usual.expected.")
    uplift = serializers.FloatField(allow_null=True, help_text="best / usual - 1 (null when usual is 0).")


class ReportFeaturingSerializer(serializers.Serializer):
    slots = serializers.IntegerField(help_text="Slots with at least min_shows shows (the candidates).")
    streamers = serializers.IntegerField(help_text="Streamers with at least min_shows shows (the candidates).")
    min_shows = serializers.IntegerField()
    items = ReportFeatureItemSerializer(many=True, help_text="The SKUs sold most recently, largest uplift first.")


class ReportErrorScoresSerializer(serializers.Serializer):
    mape = serializers.FloatField(allow_null=True)
    wape = serializers.FloatField(allow_null=True)


class ReportStockPolicySerializer(serializers.Serializer):
    stock = serializers.IntegerField(help_text="Units stocked in all (the sum of the quotas).")
    fill_rate = serializers.FloatField(allow_null=True, help_text="Units sold that the quota covered / units sold.")
    stockout_rate = serializers.FloatField(allow_null=True, help_text="Listings whose units went past the quota.")
    short_units = serializers.IntegerField()
    excess_units = serializers.IntegerField(help_text="Quota left unsold.")


class ReportRestockBacktestSerializer(serializers.Serializer):
    listings = serializers.IntegerField()
    model = ReportStockPolicySerializer(help_text="Stocking to the model's quota.")
    naive = ReportStockPolicySerializer(help_text="Stocking to the SKU's units in its last show.")
    naive_same_stock = ReportStockPolicySerializer(help_text="The naive quotas scaled to the model's total stock.")


class ReportRankingSerializer(serializers.Serializer):
    spearman = serializers.FloatField(
        allow_null=True, help_text="Rank correlation of forecast and actual units per hour on air, held-out shows."
    )
    top_half_units_per_hour = serializers.FloatField()
    bottom_half_units_per_hour = serializers.FloatField()
    uplift = serializers.FloatField(allow_null=True, help_text="top half / bottom half - 1, as realised.")
    sku_pairs_right = serializers.FloatField(
        allow_null=True, help_text="Same SKU in two held-out shows: the share where the one forecast higher sold more."
    )


class ReportFeaturingBacktestSerializer(serializers.Serializer):
    shows = serializers.IntegerField()
    model = ReportRankingSerializer()
    naive = ReportRankingSerializer()


class ReportBacktestSerializer(serializers.Serializer):
    shows = serializers.IntegerField()
    folds = serializers.IntegerField()
    step = serializers.IntegerField(help_text="Shows forecast per fold.")
    listings = serializers.IntegerField(help_text="Held-out listings.")
    model = ReportErrorScoresSerializer()
    naive = ReportErrorScoresSerializer()
    interval_coverage = serializers.FloatField(allow_null=True)
    restock = ReportRestockBacktestSerializer()
    featuring = ReportFeaturingBacktestSerializer()
    computed_at = serializers.DateTimeField()


class ReportSuggestionsSerializer(serializers.Serializer):
    shows = serializers.IntegerField(help_text="Past shows the suggestions learn from.")
    enough = serializers.BooleanField(help_text="False: too few past shows (restock and featuring are null).")
    min_shows = serializers.IntegerField(help_text="Past shows needed.")
    restock = ReportRestockSerializer(allow_null=True)
    featuring = ReportFeaturingSerializer(allow_null=True)
    backtest = ReportBacktestSerializer(
        allow_null=True, help_text="How such suggestions did on held-out shows; null while it is being computed."
    )
