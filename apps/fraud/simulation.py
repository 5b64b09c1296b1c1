"""A seeded, labelled flash-sale order stream: genuine fans and six kinds of abuse.

``generate_attempts(SimulationConfig(seed=..., n_orders=...))`` returns the order attempts of one
simulated show, sorted by time, each a frozen ``SimulatedAttempt``: when it is sent (``t_ms``,
milliseconds relative to the listing opening; negative = before open), who sends it (``buyer``,
with the account's creation time), from where (``client``: IP, device id, user agent), where the
parcel goes (``shipping_address``, in the shape ``POST /api/v1/orders`` takes), how many units,
whether and when the buyer pays, and whether it retries an earlier attempt (``retry_of``).

The truth is kept apart in ``attempt.label`` (``kind``: ``"genuine"`` or an abuse kind;
``group``; the generator's own ``actor`` and ``drop_point`` ids). **The detector must never read
``label``** nor anything else only the simulator knows: it sees exactly ``attempt.order_body()``
(and, on replay, the time it arrives and whether the buyer pays). Training code reads the label to
score, never to build features.

Replay (``apps/fraud/replay.py``) is a thin loop: sleep until ``t_ms``, POST ``order_body(listing_id)`` with
``Idempotency-Key: attempt.idempotency_key``; if the answer is 201 and ``pays``, pay after
``pay_after_ms``. ``pays`` says what the buyer *would* do if the order were accepted.

What is simulated (background in ``shared/FRAUD.md`` section 4):

- genuine ``eager_fan``: orders 1-10 s after open (log-normal, heavy tail), own device and IP,
  an account months to years old, pays within seconds to minutes; some retry after a hiccup.
- genuine ``shared_ip``: eager fans behind carrier-grade NAT (hundreds on one IP) or on a campus
  network (one /24) -- the hard negatives of IP velocity.
- genuine ``household``: 2-4 family accounts shipping to one home, each writing it differently
  (full-width digits, 3幢/3栋/3号楼, 1202室/12-02/1202), often on one home broadband IP.
- genuine ``casual``: viewers who buy later in the show (tens of seconds to minutes).
- ``sniper``: scripts firing at regular intervals before the listing opens and within ~200 ms of
  open, maximum quantity, from data-centre IPs, script or headless UAs (some disguised as the app).
- ``account_farm`` (群控 + 接码): accounts created days before, a few devices shared by many
  accounts, sequential virtual-operator phones (170/171/165/167/162), group-controlled timing.
- ``address_jigging`` (地址变形): many ordinary-looking accounts shipping to one drop point written
  many ways (reordered tokens, Rm/room/室/楼-号, full-width digits, spaces, junk suffixes).
- ``proxy_rotation``: a fresh device id and residential IP on every order, user agents whose
  platform contradicts their engine or app, dormant aged accounts, clustered near open.
- ``hoarder`` (锁单): maximum quantity at open, never pays; some order again when the unpaid stock
  comes back at the end of the payment window.
- ``brushing_ring`` (刷单): linked accounts sharing a few devices, an office IP and a few
  addresses, small orders spread over the show (not tied to open), paying instantly.

Everything is drawn from ``random.Random`` instances seeded from ``config.seed`` (string seeds,
which Python hashes deterministically), so one seed always gives the same stream.
``random_config(seed)`` varies the mix, the genuine groups and every attack's knobs, so a model
trained on some seeds is evaluated on shows it has not seen.

Synthetic data: names, phone numbers, addresses and IPs are generated. The IP ranges below are
chosen to look like mainland carrier, campus and cloud ranges; they are not an authoritative
registry, and nothing should treat them as one.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

GENUINE = "genuine"
ABUSE_KINDS = ("sniper", "account_farm", "address_jigging", "proxy_rotation", "hoarder", "brushing_ring")
KINDS = (GENUINE, *ABUSE_KINDS)
GENUINE_GROUPS = ("eager_fan", "shared_ip", "household", "casual")

CST = timezone(timedelta(hours=8), "CST")
DAY_MS = 86_400_000

# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenuineKnobs:
    retry_share: float = 0.08  # of eager/shared-IP/household fans who retry after a hiccup
    pay_share: float = 0.93  # of genuine buyers who pay an accepted order
    young_account_share: float = 0.04  # fans who signed up in the last weeks (hard negatives)
    household_size: tuple[int, int] = (2, 4)
    household_shares_ip: float = 0.6  # households ordering over one home broadband IP
    household_shared_recipient: float = 0.4  # all members ship to one recipient (name, phone)
    cgnat_share: float = 0.6  # shared-IP fans behind one CGNAT egress IP (the rest: campus /24)
    cgnat_pool_size: tuple[int, int] = (40, 300)  # buyers per CGNAT IP
    campus_pool_size: tuple[int, int] = (60, 400)  # buyers per campus /24
    eager_median_ms: float = 2500.0
    casual_median_ms: float = 90_000.0


@dataclass(frozen=True)
class SniperKnobs:
    accounts_per_script: tuple[int, int] = (1, 3)
    shots_before_open: tuple[int, int] = (2, 8)
    shots_after_open: tuple[int, int] = (0, 2)
    period_ms: tuple[float, float] = (80.0, 400.0)  # between shots
    jitter_ms: float = 6.0  # standard deviation of the gaps: machines are regular
    script_ua_share: float = 0.6  # scripts announcing themselves; the rest copy an app UA
    datacentre_ip_share: float = 0.85
    no_device_share: float = 0.5  # scripts that send no device id (no cookie jar)


@dataclass(frozen=True)
class FarmKnobs:
    farm_size: tuple[int, int] = (12, 60)  # accounts per farm
    devices: tuple[int, int] = (2, 6)  # phones on the wall, shared by the farm's accounts
    age_days: tuple[float, float] = (1.0, 20.0)
    phone_step_max: int = 2  # 1 = strictly consecutive numbers
    drop_points: tuple[int, int] = (1, 3)
    fresh_ip_share: float = 0.8  # orders over a freshly switched 4G IP


@dataclass(frozen=True)
class JiggingKnobs:
    ring_size: tuple[int, int] = (8, 40)  # accounts per drop point
    young_account_share: float = 0.3
    spaced_share: float = 0.15  # variants with a space between every character
    junk_share: float = 0.35  # variants with a junk suffix or an invented building name


@dataclass(frozen=True)
class ProxyKnobs:
    ua_pool: tuple[int, int] = (3, 6)  # user agents rotated by one operator
    inconsistent_ua_share: float = 0.75  # of those UAs, how many contradict themselves
    operator_orders: tuple[int, int] = (15, 80)
    drop_points: tuple[int, int] = (2, 6)
    dormant_age_days: tuple[float, float] = (300.0, 2500.0)


@dataclass(frozen=True)
class HoarderKnobs:
    accounts: tuple[int, int] = (3, 15)  # per operator
    devices: tuple[int, int] = (1, 3)
    open_spread_ms: float = 1500.0  # all orders land within this long after open
    reorder_share: float = 0.4  # accounts that order again when the unpaid stock comes back


@dataclass(frozen=True)
class BrushingKnobs:
    ring_size: tuple[int, int] = (5, 20)
    devices: tuple[int, int] = (1, 3)
    addresses: tuple[int, int] = (1, 3)
    office_ip_share: float = 0.8  # orders from the seller's office IP
    start_after_ms: float = 300_000.0  # off-peak: not before this long after open


DEFAULT_MIX: Mapping[str, float] = {
    GENUINE: 0.80,
    "sniper": 0.04,
    "account_farm": 0.04,
    "address_jigging": 0.03,
    "proxy_rotation": 0.03,
    "hoarder": 0.03,
    "brushing_ring": 0.03,
}
DEFAULT_GENUINE_GROUPS: Mapping[str, float] = {"eager_fan": 0.50, "shared_ip": 0.25, "household": 0.12, "casual": 0.13}


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated show. ``mix`` and ``genuine_groups`` are shares (normalised here) of
    ``n_orders`` attempts; the counts per kind and group are exact (largest remainder)."""

    seed: int = 0
    n_orders: int = 5000
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    genuine_groups: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_GENUINE_GROUPS))
    quota: int = 500
    per_buyer_limit: int = 2
    opens_at: datetime = datetime(2025, 6, 18, 20, 0, tzinfo=CST)
    window_ms: int = 30 * 60_000  # the listing stays on sale this long
    payment_window_ms: int = 15 * 60_000
    # Share of actors (a fan, a household, a farm, a script: every kind alike) whose orders a
    # streamer tool relays without describing the buyer's client or account (``SimulatedClient.relayed``).
    # 0 by default: the shipped model is trained on described clients, and the scorer leaves
    # orders without any client to the rules (``scoring.score_order``).
    relayed_share: float = 0.0
    provinces: tuple[str, ...] = ()  # region pool; empty = every province in the table
    genuine: GenuineKnobs = GenuineKnobs()
    sniper: SniperKnobs = SniperKnobs()
    account_farm: FarmKnobs = FarmKnobs()
    address_jigging: JiggingKnobs = JiggingKnobs()
    proxy_rotation: ProxyKnobs = ProxyKnobs()
    hoarder: HoarderKnobs = HoarderKnobs()
    brushing_ring: BrushingKnobs = BrushingKnobs()

    def __post_init__(self) -> None:
        _check_shares(self.mix, KINDS, "mix")
        _check_shares(self.genuine_groups, GENUINE_GROUPS, "genuine_groups")
        if self.n_orders < 0 or self.quota < 1 or self.per_buyer_limit < 1 or self.window_ms < 1000:
            raise ValueError("n_orders >= 0, quota >= 1, per_buyer_limit >= 1 and window_ms >= 1000")
        if not 0.0 <= self.relayed_share <= 1.0:
            raise ValueError("relayed_share is a share: 0 to 1")
        unknown = set(self.provinces) - set(REGIONS)
        if unknown:
            raise ValueError(f"unknown provinces: {sorted(unknown)}")
        if self.opens_at.tzinfo is None:
            raise ValueError("opens_at must be timezone-aware")


def _check_shares(shares: Mapping[str, float], allowed: tuple[str, ...], name: str) -> None:
    unknown = set(shares) - set(allowed)
    if unknown:
        raise ValueError(f"{name}: unknown keys {sorted(unknown)}")
    if any(v < 0 or math.isnan(v) for v in shares.values()) or sum(shares.values()) <= 0:
        raise ValueError(f"{name}: shares must be >= 0 with a positive sum")


def _between(rng: random.Random, lo: float, hi: float) -> float:
    return rng.uniform(lo, hi)


def random_config(seed: int, *, n_orders: int = 5000) -> SimulationConfig:
    """A config whose mix, genuine groups, listing and attack knobs are all drawn from ``seed``:
    abuse from 8% to 35% of attempts, each kind's share from a Dirichlet draw (a kind may be
    rare), households and shared IPs from a little to a lot, attacks from clumsy to careful."""
    r = random.Random(f"livecommerce-sim-config:{seed}")
    abuse = r.uniform(0.08, 0.35)
    weights = {k: r.gammavariate(1.5, 1.0) + 0.05 for k in ABUSE_KINDS}
    total = sum(weights.values())
    mix = {GENUINE: 1.0 - abuse, **{k: abuse * w / total for k, w in weights.items()}}
    groups = {
        "eager_fan": r.uniform(0.30, 0.60),
        "shared_ip": r.uniform(0.12, 0.35),
        "household": r.uniform(0.06, 0.20),
        "casual": r.uniform(0.05, 0.25),
    }
    lo_hi = _between
    return SimulationConfig(
        seed=seed,
        n_orders=n_orders,
        mix=mix,
        genuine_groups=groups,
        quota=r.choice([50, 100, 200, 300, 500, 1000, 2000]),
        per_buyer_limit=r.choice([1, 1, 2, 2, 3, 5]),
        opens_at=datetime(2025, 1, 1, 19, 0, tzinfo=CST)
        + timedelta(days=r.randrange(365), minutes=r.randrange(0, 240, 5)),
        window_ms=r.choice([10, 20, 30, 60]) * 60_000,
        payment_window_ms=r.choice([5, 10, 15, 30]) * 60_000,
        provinces=tuple(sorted(r.sample(sorted(REGIONS), r.randint(4, len(REGIONS))))),
        genuine=GenuineKnobs(
            retry_share=lo_hi(r, 0.02, 0.15),
            pay_share=lo_hi(r, 0.85, 0.98),
            young_account_share=lo_hi(r, 0.01, 0.10),
            household_shares_ip=lo_hi(r, 0.3, 0.9),
            household_shared_recipient=lo_hi(r, 0.1, 0.7),
            cgnat_share=lo_hi(r, 0.3, 0.9),
            cgnat_pool_size=(r.randint(20, 80), r.randint(120, 500)),
            campus_pool_size=(r.randint(30, 100), r.randint(150, 600)),
            eager_median_ms=lo_hi(r, 1200, 5000),
            casual_median_ms=lo_hi(r, 30_000, 300_000),
        ),
        sniper=SniperKnobs(
            shots_before_open=(r.randint(0, 3), r.randint(4, 12)),
            period_ms=(lo_hi(r, 30, 120), lo_hi(r, 150, 800)),
            jitter_ms=lo_hi(r, 1, 25),
            script_ua_share=lo_hi(r, 0.2, 0.9),
            datacentre_ip_share=lo_hi(r, 0.4, 1.0),
            no_device_share=lo_hi(r, 0.1, 0.9),
        ),
        account_farm=FarmKnobs(
            farm_size=(r.randint(6, 20), r.randint(25, 100)),
            devices=(1, r.randint(2, 10)),
            age_days=(lo_hi(r, 0.2, 3), lo_hi(r, 5, 60)),
            phone_step_max=r.randint(1, 5),
            fresh_ip_share=lo_hi(r, 0.3, 1.0),
        ),
        address_jigging=JiggingKnobs(
            ring_size=(r.randint(4, 10), r.randint(15, 60)),
            young_account_share=lo_hi(r, 0.0, 0.8),
            spaced_share=lo_hi(r, 0.0, 0.4),
            junk_share=lo_hi(r, 0.1, 0.7),
        ),
        proxy_rotation=ProxyKnobs(
            ua_pool=(r.randint(1, 3), r.randint(4, 10)),
            inconsistent_ua_share=lo_hi(r, 0.3, 1.0),
            operator_orders=(r.randint(5, 20), r.randint(30, 150)),
            dormant_age_days=(lo_hi(r, 60, 400), lo_hi(r, 800, 3000)),
        ),
        hoarder=HoarderKnobs(
            accounts=(r.randint(1, 5), r.randint(6, 30)),
            devices=(1, r.randint(1, 5)),
            open_spread_ms=lo_hi(r, 300, 4000),
            reorder_share=lo_hi(r, 0.0, 0.8),
        ),
        brushing_ring=BrushingKnobs(
            ring_size=(r.randint(3, 8), r.randint(10, 40)),
            devices=(1, r.randint(1, 5)),
            addresses=(1, r.randint(1, 5)),
            office_ip_share=lo_hi(r, 0.3, 1.0),
            start_after_ms=lo_hi(r, 60_000, 600_000),
        ),
    )


# ---------------------------------------------------------------------------------------------
# The output
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedBuyer:
    external_id: str
    name: str
    phone: str
    registered_at: datetime


@dataclass(frozen=True)
class SimulatedClient:
    ip: str
    device_id: str | None  # None: a client with no cookie jar sends none
    user_agent: str
    # Relayed by a streamer tool (or a platform) that describes nothing of the buyer's client and
    # knows no account creation time: the order carries no ``client`` and no ``registered_at``.
    relayed: bool = False


@dataclass(frozen=True)
class SimulatedAddress:
    name: str
    phone: str
    province: str
    city: str
    district: str  # "" = not given (the API field is optional)
    detail: str

    def as_dict(self) -> dict[str, str]:
        out = {"name": self.name, "phone": self.phone, "province": self.province, "city": self.city}
        if self.district:
            out["district"] = self.district
        out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class Label:
    """The truth about an attempt. For scoring and training only: never a detector input."""

    kind: str  # "genuine" or one of ABUSE_KINDS
    group: str  # genuine: one of GENUINE_GROUPS; abuse: the kind again
    actor: str  # the generator's id of who is behind it: a fan, a household, a farm, a script...
    drop_point: str  # the generator's id of the physical place the parcel goes


@dataclass(frozen=True)
class SimulatedAttempt:
    attempt_id: str  # unique in the show; also the Idempotency-Key on replay
    t_ms: int  # relative to the listing opening; negative = before open
    buyer: SimulatedBuyer
    client: SimulatedClient
    shipping_address: SimulatedAddress
    quantity: int
    pays: bool  # would pay if the order is accepted
    pay_after_ms: int | None  # after the order is accepted; None when it never pays
    retry_of: str | None  # attempt_id this one retries (same buyer, body, device) after a hiccup
    label: Label

    @property
    def idempotency_key(self) -> str:
        return self.attempt_id

    def order_body(self, listing_id: int) -> dict[str, Any]:
        """The JSON body of ``POST /api/v1/orders``: today's fields plus ``client`` and
        ``buyer.registered_at`` (ISO 8601). Never contains the label."""
        buyer = {"external_id": self.buyer.external_id, "name": self.buyer.name, "phone": self.buyer.phone}
        body: dict[str, Any] = {"listing": listing_id, "quantity": self.quantity, "buyer": buyer}
        body["shipping_address"] = self.shipping_address.as_dict()
        if not self.client.relayed:
            buyer["registered_at"] = self.buyer.registered_at.isoformat()
            client: dict[str, str] = {"ip": self.client.ip, "user_agent": self.client.user_agent}
            if self.client.device_id is not None:
                client["device_id"] = self.client.device_id
            body["client"] = client
        return body


# ---------------------------------------------------------------------------------------------
# Built-in tables (compact; synthetic)
# ---------------------------------------------------------------------------------------------

REGIONS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "北京市": {"北京市": ("朝阳区", "海淀区", "丰台区", "西城区", "通州区")},
    "上海市": {"上海市": ("浦东新区", "徐汇区", "闵行区", "静安区", "宝山区")},
    "重庆市": {"重庆市": ("渝中区", "江北区", "南岸区", "渝北区")},
    "浙江省": {"杭州市": ("西湖区", "拱墅区", "余杭区", "滨江区"), "宁波市": ("鄞州区", "海曙区", "江北区")},
    "江苏省": {"南京市": ("鼓楼区", "玄武区", "江宁区"), "苏州市": ("姑苏区", "吴中区", "虎丘区")},
    "广东省": {
        "广州市": ("天河区", "越秀区", "海珠区", "番禺区"),
        "深圳市": ("南山区", "福田区", "宝安区", "龙岗区"),
        "东莞市": ("",),  # a city without districts: the field is left out
    },
    "四川省": {"成都市": ("武侯区", "锦江区", "青羊区", "成华区"), "绵阳市": ("涪城区", "游仙区")},
    "湖北省": {"武汉市": ("洪山区", "武昌区", "江汉区", "江岸区")},
    "山东省": {"济南市": ("历下区", "市中区", "槐荫区"), "青岛市": ("市南区", "崂山区", "黄岛区")},
    "河南省": {"郑州市": ("金水区", "二七区", "中原区"), "洛阳市": ("西工区", "洛龙区")},
    "湖南省": {"长沙市": ("岳麓区", "芙蓉区", "雨花区", "开福区")},
    "福建省": {"厦门市": ("思明区", "湖里区"), "福州市": ("鼓楼区", "仓山区")},
    "陕西省": {"西安市": ("雁塔区", "碑林区", "未央区")},
    "安徽省": {"合肥市": ("蜀山区", "包河区", "庐阳区")},
    "广西壮族自治区": {"南宁市": ("青秀区", "西乡塘区", "兴宁区")},
    "黑龙江省": {"哈尔滨市": ("南岗区", "道里区", "香坊区")},
}
ROADS = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "文化路", "长江路", "黄河路", "青年路",
    "胜利路", "东风路", "学府路", "科技路", "金桥路", "滨江大道", "世纪大道", "花园路", "迎宾大道", "光明街",
    "幸福路", "朝阳路", "振兴路", "育才路", "延安路", "文三路", "天府大道", "工业园路", "南京路", "北京路",
)  # fmt: skip
COMPOUND_HEADS = (
    "阳光", "锦绣", "翠苑", "金色", "华府", "世纪", "绿城", "龙湖", "保利", "东方", "新城", "丽景",
    "云栖", "星河", "紫荆", "桂花", "枫林", "香樟", "春江", "御景", "银河", "和谐", "万家", "盛世",
)  # fmt: skip
COMPOUND_TAILS = ("花园", "小区", "家园", "苑", "公寓", "名邸", "新村", "佳园", "华庭", "嘉园")
SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何",
    "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田",
    "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚",
    "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "方", "白", "邹",
    "孟", "熊", "秦", "邱", "江", "尹", "薛", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "欧阳",
)  # fmt: skip
_SURNAME_CUM = tuple(itertools.accumulate(1.0 / (i + 4) for i in range(len(SURNAMES))))  # Zipf-like: 王李张 first
GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕彩春菊辉婷雪琳晶妍"
    "浩宇子轩梓涵欣怡一诺思雨佳琪俊杰文博晨阳嘉怡雨桐家豪若曦宇航子墨天佑诗琪建国志强海燕"
)
MAINSTREAM_PREFIXES = (
    "134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159", "178",
    "182", "183", "184", "187", "188", "198", "130", "131", "132", "155", "156", "166", "175", "176",
    "185", "186", "133", "153", "173", "177", "180", "181", "189", "191", "199",
)  # fmt: skip
VIRTUAL_PREFIXES = ("170", "171", "165", "167", "162")  # virtual operators (虚拟运营商), common with 接码

# Synthetic, plausible-looking ranges (not a registry): mobile/broadband carrier pools,
# university networks, and cloud data centres.
_MOBILE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("39.128.0.0/10", "111.0.0.0/10", "117.136.0.0/13", "223.104.0.0/14", "112.224.0.0/11", "183.0.0.0/10")
)
_BROADBAND_NETS = tuple(
    ipaddress.ip_network(n) for n in ("14.16.0.0/12", "180.96.0.0/11", "123.112.0.0/12", "221.192.0.0/14")
)
_CAMPUS_NETS = tuple(ipaddress.ip_network(n) for n in ("202.112.0.0/13", "59.64.0.0/14", "219.224.0.0/15"))
_DATACENTRE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("47.92.0.0/14", "47.96.0.0/11", "119.28.0.0/15", "121.40.0.0/14", "139.196.0.0/16", "101.132.0.0/15")
)

# User agents. Each real device has one; the version numbers vary within plausible ranges.
_IOS_VERSIONS = ("16_6", "16_7_8", "17_1_2", "17_4_1", "17_5", "17_6_1", "18_0", "18_1_1", "18_3")
_ANDROID_MODELS = (
    ("13", "V2227A"), ("14", "23127PN0CC"), ("12", "PFJM10"), ("13", "M2012K11AC"), ("14", "PHB110"),
    ("12", "ANA-AN00"), ("13", "V2309A"), ("14", "2211133C"), ("12", "NOH-AN00"), ("13", "RMX3706"),
)  # fmt: skip
_CHROME_VERSIONS = ("110.0.5481.153", "116.0.5845.163", "120.0.6099.230", "124.0.6367.82", "126.0.6478.122")
_AWEME_VERSIONS = ("28.9.0", "29.5.0", "30.1.0", "30.6.0", "31.2.0")
_KWAI_VERSIONS = ("11.8.20.33683", "11.9.10.7060", "12.1.20.6734", "12.4.30.7893")
_WECHAT_VERSIONS = ("8.0.44", "8.0.47", "8.0.49", "8.0.50")
SCRIPT_UAS = (
    "python-requests/2.31.0",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
    "curl/8.5.0",
    "axios/1.6.8",
    "Python/3.11 aiohttp/3.9.5",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 "
    "Safari/537.36",
)


def _ios_ua(rng: random.Random, app: str) -> str:
    ios = rng.choice(_IOS_VERSIONS)
    base = f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    net = rng.choice(("WIFI", "4G", "5G"))
    if app == "douyin":
        return (
            f"{base} Mobile/15E148 aweme_{rng.choice(_AWEME_VERSIONS)} JsSdk/2.0 NetType/{net} Channel/App Store "
            "ByteLocale/zh Region/CN AppTheme/light BytedanceWebview/d8a21c6"
        )
    if app == "kuaishou":
        return (
            f"{base} Mobile/15E148 Kwai/{rng.choice(_KWAI_VERSIONS)} ISLP/0 StatusHT/47 KDT/PHONE iosSCH/0 "
            f"TitleHT/44 NetType/{net} ISDM/0 ICFO/0 locale/zh-Hans CT/0 Yoda/3.2.5"
        )
    if app == "wechat":
        wechat = rng.choice(_WECHAT_VERSIONS)
        return f"{base} Mobile/15E148 MicroMessenger/{wechat}(0x18002f2c) NetType/{net} Language/zh_CN"
    major = ios.split("_")[0]
    return f"{base} Version/{major}.0 Mobile/15E148 Safari/604.1"


def _android_ua(rng: random.Random, app: str) -> str:
    release, model = rng.choice(_ANDROID_MODELS)
    chrome = rng.choice(_CHROME_VERSIONS)
    net = rng.choice(("WIFI", "4G", "5G"))
    if app == "browser":
        return (
            f"Mozilla/5.0 (Linux; Android {release}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{chrome} Mobile Safari/537.36"
        )
    base = (
        f"Mozilla/5.0 (Linux; Android {release}; {model} Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        f"(KHTML, like Gecko) Version/4.0 Chrome/{chrome} Mobile Safari/537.36"
    )
    if app == "douyin":
        v = rng.choice(_AWEME_VERSIONS)
        return (
            f"{base} aweme_{v.replace('.', '')}0 JsSdk/1.0 NetType/{net} app_version/{v} ByteLocale/zh-CN "
            "Region/CN AppTheme/light BytedanceWebview/d8a21c6"
        )
    if app == "kuaishou":
        return (
            f"{base} Kwai/{rng.choice(_KWAI_VERSIONS)} OS_PRO_BIT/64 MAX_PHY_MEM/7464 StatusHT/34 TitleHT/44 "
            f"NetType/{net} ISLP/0 ISDM/0 locale/zh-cn CT/0"
        )
    return f"{base} MMWEBID/{rng.randrange(1000, 9999)} MicroMessenger/{rng.choice(_WECHAT_VERSIONS)}.2560(0x28002F35) WeChat/arm64 Weixin NetType/{net} Language/zh_CN"  # noqa: E501


def mobile_user_agent(rng: random.Random) -> str:
    """A buyer's phone: in the Douyin or Kuaishou app's WebView mostly, else WeChat or a browser."""
    app = rng.choices(("douyin", "kuaishou", "wechat", "browser"), weights=(45, 22, 10, 23))[0]
    if rng.random() < 0.33:
        return _ios_ua(rng, app)
    return _android_ua(rng, app)


def inconsistent_user_agent(rng: random.Random) -> str:
    """A rotated UA whose parts contradict each other, as proxy-rotating bots send."""
    chrome = rng.choice(_CHROME_VERSIONS)
    ios = rng.choice(_IOS_VERSIONS)
    options = (
        # iOS allows only WebKit: an iPhone with a Blink engine string is not a real iPhone.
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{chrome} Mobile Safari/537.36",
        # The Douyin app's WebView on a Windows desktop.
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome} "
        f"Safari/537.36 aweme_{rng.choice(_AWEME_VERSIONS)} NetType/WIFI",
        # Android with an iPhone model name.
        f"Mozilla/5.0 (Linux; Android 13; iPhone15,2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome} "
        "Mobile Safari/537.36",
        # Kuaishou app on macOS desktop Safari.
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
        f"Safari/605.1.15 Kwai/{rng.choice(_KWAI_VERSIONS)}",
        # An iPhone running an Android-only WebView marker.
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        f"Version/4.0 Chrome/{chrome} Mobile Safari/537.36; wv",
    )
    return rng.choice(options)


# ---------------------------------------------------------------------------------------------
# Identities, places and how people write them
# ---------------------------------------------------------------------------------------------

_FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


@dataclass(frozen=True)
class Place:
    """One physical drop point (a flat), before anyone writes it down."""

    id: str
    province: str
    city: str
    district: str
    road: str
    road_no: int
    compound: str
    building: int
    unit: int  # 0 = the building has no units
    floor: int
    room: int

    @property
    def room_no(self) -> str:
        return f"{self.floor}{self.room:02d}"


@dataclass(frozen=True)
class Writing:
    """How one person writes a ``Place``."""

    short_province: bool = False  # 浙江 for 浙江省
    short_city: bool = False  # 杭州 for 杭州市
    district_in_detail: bool = False  # the district field left empty, written into detail instead
    full_width: bool = False  # digits from a Chinese keyboard: １２０２
    hao: str = "号"  # or 號
    building: str = "幢"  # 栋, 号楼, 座
    room: str = "室"  # plain (1202), dash (12-02), rm (Rm1202), room (room 1202), floor (12楼02号), hao (1202号)
    compact: bool = False  # 3-2-1202 for building-unit-room
    order: str = "road_first"  # compound_first; compound_only (the road left out)
    spaced: str = "none"  # tokens: spaces between parts; every: a space between every character
    junk: str = ""  # a suffix that makes the string unique without changing the place


_JUNK = ("(放门口)", "，放快递柜", " 电话联系", "-A", "（菜鸟驿站）", " 送货上门", "/", "..", "——", "#")
_FAKE_BUILDINGS = ("A座", "东区", "北门", "B区", "南苑", "一期")


def write_detail(place: Place, w: Writing) -> str:
    n = str(place.floor * 100 + place.room)
    room = {
        "室": f"{n}室",
        "plain": n,
        "dash": f"{place.floor}-{place.room:02d}",
        "rm": f"Rm{n}",
        "room": f"room {n}",
        "floor": f"{place.floor}楼{place.room:02d}号",
        "hao": f"{n}号",
    }[w.room]
    if w.compact:
        parts_tail = [f"{place.building}-{place.unit}-{n}" if place.unit else f"{place.building}-{n}"]
    else:
        parts_tail = [f"{place.building}{w.building}"]
        if place.unit:
            parts_tail.append(f"{place.unit}单元")
        parts_tail.append(room)
    road = f"{place.road}{place.road_no}{w.hao}"
    if w.order == "compound_first":
        parts = [place.compound, road, *parts_tail]
    elif w.order == "compound_only":
        parts = [place.compound, *parts_tail]
    else:
        parts = [road, place.compound, *parts_tail]
    if w.district_in_detail and place.district:
        parts.insert(0, place.district)
    text = (" " if w.spaced == "tokens" else "").join(parts) + w.junk
    if w.spaced == "every":
        text = " ".join(text.replace(" ", ""))
    if w.full_width:
        text = text.translate(_FULL_WIDTH)
    return text


def _short(name: str) -> str:
    for suffix in ("壮族自治区", "自治区", "省", "市"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def write_address(place: Place, w: Writing, *, name: str, phone: str) -> SimulatedAddress:
    return SimulatedAddress(
        name=name,
        phone=phone,
        province=_short(place.province) if w.short_province else place.province,
        city=_short(place.city) if w.short_city else place.city,
        district="" if w.district_in_detail else place.district,
        detail=write_detail(place, w),
    )


class _World:
    """Shared state of one generation: the RNG for each part, and the identities already handed
    out, so ids, phones and IPs never collide between groups (which would invent links)."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.provinces = config.provinces or tuple(REGIONS)
        self.ids: set[str] = set()
        self.phones: set[str] = set()
        self.places = 0
        self.actors = 0
        self.opens_at = config.opens_at

    # ids ----------------------------------------------------------------------------------
    def external_id(self, rng: random.Random) -> str:
        while True:
            value = f"dy{rng.randrange(10**10, 10**11)}"
            if value not in self.ids:
                self.ids.add(value)
                return value

    def actor(self, prefix: str) -> str:
        self.actors += 1
        return f"{prefix}-{self.actors}"

    def phone(self, rng: random.Random, prefixes: tuple[str, ...] = MAINSTREAM_PREFIXES) -> str:
        while True:
            value = f"{rng.choice(prefixes)}{rng.randrange(10**8):08d}"
            if value not in self.phones:
                self.phones.add(value)
                return value

    def sequential_phones(self, rng: random.Random, count: int, step_max: int) -> list[str]:
        """Numbers from one block of a virtual operator, consecutive or nearly."""
        while True:
            base = int(f"{rng.choice(VIRTUAL_PREFIXES)}{rng.randrange(10**8 - count * step_max):08d}")
            out, n = [], base
            for _ in range(count):
                out.append(str(n))
                n += rng.randint(1, step_max)
            if not self.phones.intersection(out):
                self.phones.update(out)
                return out

    @staticmethod
    def device(rng: random.Random) -> str:
        return uuid.UUID(int=rng.getrandbits(128), version=4).hex

    @staticmethod
    def name(rng: random.Random) -> str:
        surname = rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]
        given = "".join(rng.choice(GIVEN_CHARS) for _ in range(1 if rng.random() < 0.3 else 2))
        return surname + given

    def registered(self, rng: random.Random, age_days: float) -> datetime:
        at = self.opens_at - timedelta(days=age_days, seconds=rng.randrange(86_400))
        return at.astimezone(UTC).replace(microsecond=0)

    def fan_registered(self, rng: random.Random) -> datetime:
        if rng.random() < self.config.genuine.young_account_share:
            return self.registered(rng, rng.uniform(0.5, 30))
        return self.registered(rng, min(3650.0, max(35.0, rng.lognormvariate(math.log(420), 0.9))))

    # places -------------------------------------------------------------------------------
    def place(self, rng: random.Random) -> Place:
        self.places += 1
        province = rng.choice(self.provinces)
        city = rng.choice(sorted(REGIONS[province]))
        floor = rng.randint(1, 33)
        return Place(
            id=f"place-{self.places}",
            province=province,
            city=city,
            district=rng.choice(REGIONS[province][city]),
            road=rng.choice(ROADS),
            road_no=rng.randint(1, 999),
            compound=rng.choice(COMPOUND_HEADS) + rng.choice(COMPOUND_TAILS),
            building=rng.randint(1, 40),
            unit=rng.choice((0, 0, 1, 2, 3, 4)),
            floor=floor,
            room=rng.randint(1, 8 if floor > 1 else 4),
        )

    # networks -----------------------------------------------------------------------------
    @staticmethod
    def ip(rng: random.Random, nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str:
        net = rng.choice(nets)
        block = rng.randrange(net.num_addresses // 256)
        return str(net.network_address + block * 256 + rng.randint(1, 254))

    @staticmethod
    def ip_in_24(rng: random.Random, prefix: str) -> str:
        return f"{prefix}.{rng.randint(1, 254)}"


def plain_writing(rng: random.Random) -> Writing:
    """How most people write their own address: the same way every time."""
    return Writing(
        short_province=rng.random() < 0.15,
        short_city=rng.random() < 0.1,
        building=rng.choices(("幢", "栋", "号楼", "座"), weights=(3, 5, 4, 1))[0],
        room=rng.choices(("室", "plain", "hao"), weights=(6, 3, 1))[0],
        spaced=rng.choice(("none", "none", "tokens")),
    )


def household_writing(rng: random.Random) -> Writing:
    """How one member of a family writes the family's address: the same flat, their own habits."""
    return Writing(
        short_province=rng.random() < 0.3,
        short_city=rng.random() < 0.2,
        district_in_detail=rng.random() < 0.1,
        full_width=rng.random() < 0.25,
        hao="號" if rng.random() < 0.05 else "号",
        building=rng.choice(("幢", "栋", "号楼")),
        room=rng.choice(("室", "plain", "dash", "hao")),
        compact=rng.random() < 0.12,
        order="compound_first" if rng.random() < 0.2 else "road_first",
        spaced=rng.choice(("none", "tokens")),
    )


def jigged_writing(rng: random.Random, knobs: JiggingKnobs) -> Writing:
    """One of the many ways a jigging crew writes its drop point so that no two orders match."""
    junk = ""
    if rng.random() < knobs.junk_share:
        junk = rng.choice(_JUNK) if rng.random() < 0.6 else rng.choice(_FAKE_BUILDINGS)
    return Writing(
        short_province=rng.random() < 0.5,
        short_city=rng.random() < 0.5,
        district_in_detail=rng.random() < 0.3,
        full_width=rng.random() < 0.3,
        hao=rng.choice(("号", "號")),
        building=rng.choice(("幢", "栋", "号楼", "座")),
        room=rng.choice(("室", "plain", "dash", "rm", "room", "floor", "hao")),
        compact=rng.random() < 0.2,
        order=rng.choice(("road_first", "compound_first", "compound_only")),
        spaced="every" if rng.random() < knobs.spaced_share else rng.choice(("none", "tokens")),
        junk=junk,
    )


def written_phone(rng: random.Random, phone: str, messy: float) -> str:
    """A mobile written as people type it: mostly bare, sometimes +86, spaced or dashed."""
    if rng.random() >= messy:
        return phone
    return rng.choice(
        (
            f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}",
            f"{phone[:3]}-{phone[3:7]}-{phone[7:]}",
            f"+86{phone}",
            f"{phone[:3]} {phone[3:7]} {phone[7:]}",
        )
    )


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


@dataclass
class _Draft:
    t_ms: float
    buyer: SimulatedBuyer
    client: SimulatedClient
    address: SimulatedAddress
    quantity: int
    pays: bool
    pay_after_ms: int | None
    label: Label
    retry_of: _Draft | None = None


def _apportion(total: int, shares: Mapping[str, float], keys: tuple[str, ...]) -> dict[str, int]:
    """Exact counts per key summing to ``total`` (largest remainder)."""
    weight = sum(shares.get(k, 0.0) for k in keys)
    raw = {k: total * shares.get(k, 0.0) / weight for k in keys}
    counts = {k: int(v) for k, v in raw.items()}
    rest = total - sum(counts.values())
    for k in sorted(keys, key=lambda k: (counts[k] - raw[k], keys.index(k)))[:rest]:
        counts[k] += 1
    return counts


def _lognormal_ms(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def _fan_payment(rng: random.Random, world: _World) -> tuple[bool, int | None]:
    if rng.random() >= world.config.genuine.pay_share:
        return False, None
    return True, int(min(world.config.payment_window_ms - 1000, _lognormal_ms(rng, 25_000, 1.0)))


def _eager_arrival(rng: random.Random, world: _World) -> float:
    g = world.config.genuine
    if rng.random() < 0.1:  # the heavy tail: came back from the kitchen
        return _lognormal_ms(rng, g.eager_median_ms * 8, 1.0)
    return _lognormal_ms(rng, g.eager_median_ms, 0.7)


def _fan_quantity(rng: random.Random, limit: int) -> int:
    return 1 if limit == 1 or rng.random() < 0.8 else rng.randint(2, limit)


def _fan_attempts(
    rng: random.Random,
    world: _World,
    *,
    group: str,
    actor: str,
    t: float,
    buyer: SimulatedBuyer,
    client: SimulatedClient,
    address: SimulatedAddress,
    drop_point: str,
    may_retry: bool = True,
) -> list[_Draft]:
    label = Label(GENUINE, group, actor, drop_point)
    quantity = _fan_quantity(rng, world.config.per_buyer_limit)
    pays, after = _fan_payment(rng, world)
    first = _Draft(t, buyer, client, address, quantity, pays, after, label)
    if not (may_retry and rng.random() < world.config.genuine.retry_share):
        return [first]
    # The first try hit a hiccup (timeout, error page): the fan never saw its answer and will not
    # pay it; the same body goes again a few seconds later.
    first.pays, first.pay_after_ms = False, None
    retry = _Draft(t + rng.uniform(600, 6000), buyer, client, address, quantity, pays, after, label, retry_of=first)
    return [first, retry]


def _gen_eager(rng: random.Random, world: _World, group: str = "eager_fan") -> Iterator[list[_Draft]]:
    while True:
        place = world.place(rng)
        name, phone = world.name(rng), world.phone(rng)
        buyer = SimulatedBuyer(world.external_id(rng), name, phone, world.fan_registered(rng))
        nets = _MOBILE_NETS if rng.random() < 0.7 else _BROADBAND_NETS
        client = SimulatedClient(world.ip(rng, nets), world.device(rng), mobile_user_agent(rng))
        address = write_address(place, plain_writing(rng), name=name, phone=written_phone(rng, phone, 0.08))
        casual = group == "casual"
        t = _lognormal_ms(rng, world.config.genuine.casual_median_ms, 1.2) if casual else _eager_arrival(rng, world)
        yield _fan_attempts(
            rng,
            world,
            group=group,
            actor=world.actor("fan"),
            t=t,
            buyer=buyer,
            client=client,
            address=address,
            drop_point=place.id,
            may_retry=not casual,
        )


def _gen_shared_ip(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    """Fans behind one CGNAT egress IP, or spread over one campus /24."""
    g = world.config.genuine
    while True:
        # One CGNAT egress IP for the whole pool, or a campus /24 with an address per fan.
        egress = world.ip(rng, _MOBILE_NETS) if rng.random() < g.cgnat_share else None
        prefix = world.ip(rng, _CAMPUS_NETS).rsplit(".", 1)[0]
        size = rng.randint(*(g.cgnat_pool_size if egress else g.campus_pool_size))
        fans = _gen_eager(rng, world, "shared_ip")
        for _ in range(size):
            drafts = next(fans)
            client = replace(drafts[0].client, ip=egress or world.ip_in_24(rng, prefix))
            for d in drafts:
                d.client = client
            yield drafts


def _gen_household(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    g = world.config.genuine
    while True:
        place = world.place(rng)
        actor = world.actor("household")
        home_ip = world.ip(rng, _BROADBAND_NETS) if rng.random() < g.household_shares_ip else None
        recipient = (world.name(rng), world.phone(rng)) if rng.random() < g.household_shared_recipient else None
        start = _eager_arrival(rng, world)
        written: set[str] = set()
        for _ in range(rng.randint(*g.household_size)):
            name, phone = world.name(rng), world.phone(rng)
            buyer = SimulatedBuyer(world.external_id(rng), name, phone, world.fan_registered(rng))
            ip = home_ip or world.ip(rng, _MOBILE_NETS)
            client = SimulatedClient(ip, world.device(rng), mobile_user_agent(rng))
            to_name, to_phone = recipient or (name, phone)
            for _try in range(20):  # each member writes it their own way
                address = write_address(
                    place, household_writing(rng), name=to_name, phone=written_phone(rng, to_phone, 0.1)
                )
                if address.detail not in written:
                    break
            written.add(address.detail)
            t = start + abs(rng.gauss(0, 2500))
            yield _fan_attempts(
                rng,
                world,
                group="household",
                actor=actor,
                t=t,
                buyer=buyer,
                client=client,
                address=address,
                drop_point=place.id,
            )


def _gen_sniper(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    k = world.config.sniper
    limit = world.config.per_buyer_limit
    while True:
        actor = world.actor("script")
        place = world.place(rng)
        writing = plain_writing(rng)
        dc = rng.random() < k.datacentre_ip_share
        ip = world.ip(rng, _DATACENTRE_NETS if dc else _BROADBAND_NETS)
        device = None if rng.random() < k.no_device_share else world.device(rng)
        ua = rng.choice(SCRIPT_UAS) if rng.random() < k.script_ua_share else mobile_user_agent(rng)
        period = rng.uniform(*k.period_ms)
        label = Label("sniper", "sniper", actor, place.id)
        for _ in range(rng.randint(*k.accounts_per_script)):
            name, phone = world.name(rng), world.phone(rng)
            buyer = SimulatedBuyer(world.external_id(rng), name, phone, world.registered(rng, rng.uniform(20, 900)))
            address = write_address(place, writing, name=name, phone=phone)
            client = SimulatedClient(ip, device, ua)
            at_open = rng.uniform(0, 200)  # the shot aimed at the opening instant
            before, after = rng.randint(*k.shots_before_open), rng.randint(*k.shots_after_open)
            pay = int(rng.uniform(150, 1800))
            yield [
                _Draft(
                    at_open + i * period + rng.gauss(0, k.jitter_ms), buyer, client, address, limit, True, pay, label
                )
                for i in range(-before, after + 1)
            ]


def _gen_farm(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    k = world.config.account_farm
    while True:
        actor = world.actor("farm")
        size = rng.randint(*k.farm_size)
        phones = world.sequential_phones(rng, size, k.phone_step_max)
        devices = [(world.device(rng), mobile_user_agent(rng)) for _ in range(rng.randint(*k.devices))]
        drops = [world.place(rng) for _ in range(rng.randint(*k.drop_points))]
        writings = [plain_writing(rng) for _ in drops]
        created = rng.uniform(*k.age_days)  # accounts made in one batch
        wall_ip = world.ip(rng, _MOBILE_NETS)
        tap = rng.uniform(300, 2500)  # the operator taps "buy" on every phone of the wall
        for i, phone in enumerate(phones):
            name = world.name(rng)
            buyer = SimulatedBuyer(
                world.external_id(rng), name, phone, world.registered(rng, max(0.05, created + rng.gauss(0, 0.2)))
            )
            device, ua = devices[i % len(devices)]
            ip = world.ip(rng, _MOBILE_NETS) if rng.random() < k.fresh_ip_share else wall_ip
            j = rng.randrange(len(drops))
            address = write_address(drops[j], writings[j], name=name, phone=phone)
            pays = rng.random() < 0.95
            t = tap + (i // len(devices)) * rng.uniform(200, 900) + abs(rng.gauss(0, 150))
            label = Label("account_farm", "account_farm", actor, drops[j].id)
            yield [
                _Draft(
                    t,
                    buyer,
                    SimulatedClient(ip, device, ua),
                    address,
                    1,
                    pays,
                    int(rng.uniform(3000, 30_000)) if pays else None,
                    label,
                )
            ]


def _gen_jigging(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    k = world.config.address_jigging
    while True:
        actor = world.actor("jig")
        place = world.place(rng)
        written: set[str] = set()
        for _ in range(rng.randint(*k.ring_size)):
            name = world.name(rng)
            phone = world.phone(rng, MAINSTREAM_PREFIXES + VIRTUAL_PREFIXES)
            age = rng.uniform(1, 30) if rng.random() < k.young_account_share else rng.uniform(60, 1500)
            buyer = SimulatedBuyer(world.external_id(rng), name, phone, world.registered(rng, age))
            client = SimulatedClient(world.ip(rng, _MOBILE_NETS), world.device(rng), mobile_user_agent(rng))
            recipient = name if rng.random() < 0.7 else world.name(rng)[0] + rng.choice(("先生", "女士", "小姐"))
            for _try in range(30):  # every order must read differently
                address = write_address(
                    place, jigged_writing(rng, k), name=recipient, phone=written_phone(rng, phone, 0.3)
                )
                if address.detail not in written:
                    break
            written.add(address.detail)
            pays = rng.random() < 0.95
            label = Label("address_jigging", "address_jigging", actor, place.id)
            yield [
                _Draft(
                    _eager_arrival(rng, world),
                    buyer,
                    client,
                    address,
                    _fan_quantity(rng, world.config.per_buyer_limit),
                    pays,
                    int(rng.uniform(2000, 60_000)) if pays else None,
                    label,
                )
            ]


def _gen_proxy(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    k = world.config.proxy_rotation
    while True:
        actor = world.actor("proxy")
        uas = [
            inconsistent_user_agent(rng) if rng.random() < k.inconsistent_ua_share else mobile_user_agent(rng)
            for _ in range(rng.randint(*k.ua_pool))
        ]
        drops = [(world.place(rng), plain_writing(rng)) for _ in range(rng.randint(*k.drop_points))]
        for _ in range(rng.randint(*k.operator_orders)):
            name, phone = world.name(rng), world.phone(rng)
            buyer = SimulatedBuyer(
                world.external_id(rng), name, phone, world.registered(rng, rng.uniform(*k.dormant_age_days))
            )
            nets = _MOBILE_NETS if rng.random() < 0.5 else _BROADBAND_NETS  # residential proxies
            client = SimulatedClient(world.ip(rng, nets), world.device(rng), rng.choice(uas))
            place, writing = rng.choice(drops)
            pays = rng.random() < 0.9
            label = Label("proxy_rotation", "proxy_rotation", actor, place.id)
            yield [
                _Draft(
                    _lognormal_ms(rng, 1200, 0.5),
                    buyer,
                    client,
                    write_address(place, writing, name=name, phone=phone),
                    rng.randint(1, world.config.per_buyer_limit),
                    pays,
                    int(rng.uniform(1500, 20_000)) if pays else None,
                    label,
                )
            ]


def _gen_hoarder(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    k = world.config.hoarder
    limit = world.config.per_buyer_limit
    while True:
        actor = world.actor("hoard")
        devices = [(world.device(rng), mobile_user_agent(rng)) for _ in range(rng.randint(*k.devices))]
        ip = world.ip(rng, _BROADBAND_NETS)
        for i in range(rng.randint(*k.accounts)):
            place = world.place(rng)
            name, phone = world.name(rng), world.phone(rng)
            buyer = SimulatedBuyer(world.external_id(rng), name, phone, world.registered(rng, rng.uniform(5, 120)))
            device, ua = devices[i % len(devices)]
            client = SimulatedClient(ip if rng.random() < 0.5 else world.ip(rng, _MOBILE_NETS), device, ua)
            address = write_address(place, plain_writing(rng), name=name, phone=phone)
            label = Label("hoarder", "hoarder", actor, place.id)
            drafts = [_Draft(rng.uniform(0, k.open_spread_ms), buyer, client, address, limit, False, None, label)]
            t = world.config.payment_window_ms + drafts[0].t_ms + rng.uniform(200, 3000)
            if t < world.config.window_ms and rng.random() < k.reorder_share:  # back when the units return
                drafts.append(_Draft(t, buyer, client, address, limit, False, None, label))
            yield drafts


def _gen_brushing(rng: random.Random, world: _World) -> Iterator[list[_Draft]]:
    k = world.config.brushing_ring
    limit = world.config.per_buyer_limit
    while True:
        actor = world.actor("brush")
        devices = [(world.device(rng), mobile_user_agent(rng)) for _ in range(rng.randint(*k.devices))]
        places = [(world.place(rng), plain_writing(rng)) for _ in range(rng.randint(*k.addresses))]
        office = world.ip(rng, _BROADBAND_NETS)
        start = min(k.start_after_ms, world.config.window_ms * 0.5)
        for i in range(rng.randint(*k.ring_size)):
            name, phone = world.name(rng), world.phone(rng)
            buyer = SimulatedBuyer(world.external_id(rng), name, phone, world.registered(rng, rng.uniform(30, 700)))
            device, ua = devices[i % len(devices)]
            place, writing = rng.choice(places)
            address = write_address(place, writing, name=name, phone=phone)
            label = Label("brushing_ring", "brushing_ring", actor, place.id)
            drafts: list[_Draft] = []
            for _ in range(rng.randint(1, limit)):  # small repeat orders, each of one unit
                ip = office if rng.random() < k.office_ip_share else world.ip(rng, _MOBILE_NETS)
                t = rng.uniform(start, world.config.window_ms - 1)
                client = SimulatedClient(ip, device, ua)
                drafts.append(_Draft(t, buyer, client, address, 1, True, int(rng.uniform(200, 3000)), label))
            yield drafts


_GENERATORS = {
    "eager_fan": _gen_eager,
    "shared_ip": _gen_shared_ip,
    "household": _gen_household,
    "casual": lambda rng, world: _gen_eager(rng, world, "casual"),
    "sniper": _gen_sniper,
    "account_farm": _gen_farm,
    "address_jigging": _gen_jigging,
    "proxy_rotation": _gen_proxy,
    "hoarder": _gen_hoarder,
    "brushing_ring": _gen_brushing,
}


def _take(gen: Iterator[list[_Draft]], count: int) -> list[_Draft]:
    out: list[_Draft] = []
    while len(out) < count:
        batch = next(gen)
        room = count - len(out)
        if len(batch) > room:
            # Cut the batch at the count (a retry comes after its original, so it goes first).
            batch = batch[:room]
        out.extend(batch)
    return out


def generate_attempts(config: SimulationConfig) -> list[SimulatedAttempt]:
    """The attempts of one simulated show, sorted by time (see the module docstring)."""
    world = _World(config)
    kinds = _apportion(config.n_orders, config.mix, KINDS)
    parts = _apportion(kinds.pop(GENUINE), config.genuine_groups, GENUINE_GROUPS)
    parts.update(kinds)
    drafts: list[_Draft] = []
    for part in (*GENUINE_GROUPS, *ABUSE_KINDS):  # a fixed order: the shared id sets fill alike
        if parts[part]:
            rng = random.Random(f"livecommerce-sim:{config.seed}:{part}")
            drafts.extend(_take(_GENERATORS[part](rng, world), parts[part]))
    last = config.window_ms - 1
    for d in drafts:  # the long tails end when the listing closes
        d.t_ms = min(d.t_ms, last)
    drafts.sort(key=lambda d: d.t_ms)
    ids = {id(d): f"sim{config.seed}-{i:06d}" for i, d in enumerate(drafts)}
    relay = random.Random(f"livecommerce-sim:{config.seed}:relay")
    relayed: dict[str, bool] = {}
    for d in drafts:  # per actor, in time order: the same draw for the same seed
        if relayed.setdefault(d.label.actor, relay.random() < config.relayed_share):
            d.client = SimulatedClient("", None, "", relayed=True)
    return [
        SimulatedAttempt(
            attempt_id=ids[id(d)],
            t_ms=round(d.t_ms),
            buyer=d.buyer,
            client=d.client,
            shipping_address=d.address,
            quantity=d.quantity,
            pays=d.pays,
            pay_after_ms=d.pay_after_ms,
            retry_of=ids[id(d.retry_of)] if d.retry_of is not None else None,
            label=d.label,
        )
        for d in drafts
    ]
