"""What generated history is made of (``history``): the catalogue, the streamers, the weekday ×
hour seasonality, the regions orders ship to, and names. Plain data; the shapes and weights are
what a livestream shop on Douyin / Kuaishou / Taobao sees, rounded, not any real shop's figures.
The catalogue's products are other than the demo's own three (``load_demo``), so the demo's
catalogue lists no product twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Variant:
    name: str  # the SKU's name as shown (颜色 / 规格)
    color: str
    size: str
    price: str  # list price in yuan


@dataclass(frozen=True)
class Item:
    name: str
    description: str
    appeal: float  # how much it sells, all else equal (1: average)
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class Category:
    name: str  # what ``Product.category`` holds
    code: str  # in the SKU codes (``HIST-<code>-<product>-<variant>``)
    items: tuple[Item, ...]


def _v(name: str, price: str, color: str = "", size: str = "") -> Variant:
    return Variant(name=name, color=color, size=size, price=price)


CATALOGUE: tuple[Category, ...] = (
    Category(
        "美妆",
        "BEA",
        (
            Item(
                "丝绒哑光口红",
                "Velvet matte lipstick",
                1.4,
                (_v("正红色 #999", "89", color="正红色"), _v("豆沙色 #520", "89", color="豆沙色")),
            ),
            Item(
                "玻尿酸补水精华液",
                "Hyaluronic acid serum",
                1.2,
                (_v("30ml", "199", size="30ml"), _v("50ml", "299", size="50ml")),
            ),
            Item("氨基酸洁面乳 120g", "Amino-acid facial cleanser 120 g", 0.9, (_v("120g", "69"),)),
            Item(
                "轻透气垫BB霜",
                "Cushion BB cream",
                1.0,
                (_v("自然色", "159", color="自然色"), _v("象牙白", "159", color="象牙白")),
            ),
        ),
    ),
    Category(
        "服饰",
        "APP",
        (
            Item(
                "桑蚕丝印花丝巾",
                "Mulberry silk print scarf",
                1.0,
                (
                    _v("青花 90×90 cm", "299", color="青花", size="90×90 cm"),
                    _v("落樱 90×90 cm", "299", color="落樱", size="90×90 cm"),
                ),
            ),
            Item(
                "加绒连帽卫衣",
                "Fleece-lined hoodie",
                1.3,
                (
                    _v("黑色 M", "159", color="黑色", size="M"),
                    _v("黑色 L", "159", color="黑色", size="L"),
                    _v("燕麦色 L", "159", color="燕麦色", size="L"),
                ),
            ),
            Item(
                "高腰直筒牛仔裤",
                "High-waist straight jeans",
                1.1,
                (_v("浅蓝 27", "199", color="浅蓝", size="27"), _v("浅蓝 28", "199", color="浅蓝", size="28")),
            ),
            Item(
                "轻薄白鸭绒羽绒服",
                "Light down jacket",
                0.8,
                (_v("藏青 L", "699", color="藏青", size="L"), _v("米白 M", "699", color="米白", size="M")),
            ),
        ),
    ),
    Category(
        "食品",
        "FOD",
        (
            Item("武夷山大红袍茶礼盒 250g", "Wuyi Da Hong Pao tea gift box 250 g", 0.8, (_v("250g", "198"),)),
            Item("每日坚果礼盒 30袋", "Daily nuts gift box, 30 bags", 1.5, (_v("30袋", "129"),)),
            Item(
                "内蒙古风干牛肉干 500g",
                "Inner Mongolia air-dried beef jerky 500 g",
                1.1,
                (_v("原味", "88", color="原味"), _v("香辣", "88", color="香辣")),
            ),
            Item("柳州螺蛳粉 5袋装", "Liuzhou river-snail rice noodles x5", 1.3, (_v("5袋装", "49.90"),)),
            Item("五常稻花香大米 5kg", "Wuchang fragrant rice 5 kg", 0.9, (_v("5kg", "89"),)),
        ),
    ),
    Category(
        "家居",
        "HOM",
        (
            Item(
                "全棉四件套 1.8m床",
                "Cotton bedding set for a 1.8 m bed",
                1.0,
                (_v("星空蓝", "299", color="星空蓝", size="1.8m"), _v("奶油白", "299", color="奶油白", size="1.8m")),
            ),
            Item(
                "316不锈钢保温杯 500ml",
                "Stainless steel vacuum flask 500 ml",
                1.2,
                (_v("白色", "89", color="白色"), _v("黑色", "89", color="黑色")),
            ),
            Item("天然乳胶枕", "Natural latex pillow", 0.8, (_v("标准款", "199"),)),
            Item("折叠收纳箱 3个装", "Folding storage boxes x3", 0.9, (_v("3个装", "59"),)),
        ),
    ),
    Category(
        "数码",
        "DIG",
        (
            Item(
                "主动降噪蓝牙耳机",
                "Noise-cancelling Bluetooth earbuds",
                1.3,
                (_v("白色", "299", color="白色"), _v("黑色", "299", color="黑色")),
            ),
            Item("20000mAh 快充充电宝", "20,000 mAh fast-charging power bank", 1.1, (_v("20000mAh", "129"),)),
            Item("智能运动手表", "Smart sports watch", 0.8, (_v("曜石黑", "599", color="曜石黑"),)),
            Item("机械键盘 青轴", "Mechanical keyboard, blue switches", 0.6, (_v("青轴", "349"),)),
        ),
    ),
    Category(
        "母婴",
        "BAB",
        (
            Item("婴儿纸尿裤 L码 84片", "Baby diapers, size L, 84", 1.0, (_v("L 84片", "139", size="L"),)),
            Item("宝宝有机米粉 250g", "Organic baby rice cereal 250 g", 0.7, (_v("原味 250g", "59"),)),
        ),
    ),
)
SKU_PREFIX = "HIST-"


@dataclass(frozen=True)
class Streamer:
    name: str
    strength: float  # orders per show relative to an average host in the same slot
    share: float  # of the shows
    affinity: dict[str, float] = field(default_factory=dict)  # category -> how much better it sells


STREAMERS: tuple[Streamer, ...] = (
    Streamer("小雅 Xiaoya", 1.6, 0.35, {"美妆": 1.5, "服饰": 1.3}),
    Streamer("阿杰 A-Jie", 1.15, 0.25, {"数码": 1.6, "家居": 1.1}),
    Streamer("林老师 Ms Lin", 0.9, 0.25, {"食品": 1.5, "母婴": 1.3}),
    Streamer("店长 Store manager", 0.55, 0.15, {}),
)

SHOW_THEMES = ("宠粉福利夜", "新品首发", "周末狂欢专场", "清仓秒杀", "品牌日", "会员专享", "秋冬上新", "年货节")

# Local hour (Asia/Shanghai) a show may start at -> how strongly that hour sells (evenings lead).
HOUR_WEIGHT: dict[int, float] = {
    8: 0.25,
    9: 0.3,
    10: 0.4,
    11: 0.45,
    12: 0.6,
    13: 0.55,
    14: 0.45,
    15: 0.45,
    16: 0.5,
    17: 0.6,
    18: 0.85,
    19: 1.3,
    20: 1.8,
    21: 1.7,
    22: 1.2,
    23: 0.7,
}
WEEKDAY_WEIGHT = (0.85, 0.85, 0.9, 0.95, 1.1, 1.35, 1.3)  # Monday .. Sunday
WEEKEND_AFTERNOON = 1.3  # Saturday and Sunday 13:00-17:59 sell better than weekday afternoons


def slot_weight(weekday: int, hour: int) -> float:
    """How strongly a show starting at ``hour`` (local) on ``weekday`` (0: Monday) sells."""
    w = HOUR_WEIGHT[hour] * WEEKDAY_WEIGHT[weekday]
    if weekday >= 5 and 13 <= hour <= 17:
        w *= WEEKEND_AFTERNOON
    return w


# Where orders come from, as far as the show sells there ("api": streamer tools, comment-to-order bots).
CHANNEL_WEIGHT: dict[str, float] = {"douyin": 0.38, "kuaishou": 0.17, "taobao": 0.15, "storefront": 0.2, "api": 0.1}
PLATFORM_SHARE: dict[str, float] = {"douyin": 0.9, "kuaishou": 0.55, "taobao": 0.45}  # shows that also sell there

# (province, weight in % of orders, ((city, (districts...)), ...)). The first city of a province
# gets most of its orders. A city with no districts listed ships with an empty district.
REGIONS: tuple[tuple[str, float, tuple[tuple[str, tuple[str, ...]], ...]], ...] = (
    (
        "广东省",
        14,
        (
            ("深圳市", ("南山区", "福田区", "宝安区", "龙岗区", "龙华区")),
            ("广州市", ("天河区", "越秀区", "海珠区", "番禺区", "白云区")),
            ("佛山市", ("禅城区", "南海区", "顺德区")),
            ("东莞市", ()),
        ),
    ),
    (
        "浙江省",
        10,
        (
            ("杭州市", ("西湖区", "拱墅区", "余杭区", "滨江区", "萧山区")),
            ("宁波市", ("鄞州区", "海曙区", "江北区")),
            ("温州市", ("鹿城区", "瓯海区")),
            ("金华市", ("婺城区", "义乌市")),
        ),
    ),
    (
        "江苏省",
        9,
        (
            ("苏州市", ("姑苏区", "吴中区", "相城区", "昆山市")),
            ("南京市", ("鼓楼区", "玄武区", "江宁区", "建邺区")),
            ("无锡市", ("梁溪区", "滨湖区")),
            ("常州市", ("天宁区", "武进区")),
        ),
    ),
    (
        "山东省",
        6,
        (("青岛市", ("市南区", "崂山区", "黄岛区")), ("济南市", ("历下区", "市中区")), ("烟台市", ("芝罘区",))),
    ),
    ("上海市", 5, (("上海市", ("浦东新区", "徐汇区", "静安区", "闵行区", "杨浦区")),)),
    ("北京市", 5, (("北京市", ("朝阳区", "海淀区", "东城区", "丰台区")),)),
    ("四川省", 5, (("成都市", ("武侯区", "锦江区", "青羊区", "双流区")), ("绵阳市", ("涪城区",)))),
    ("河南省", 5, (("郑州市", ("金水区", "二七区", "中原区")), ("洛阳市", ("西工区",)))),
    (
        "福建省",
        4.5,
        (("厦门市", ("思明区", "湖里区")), ("福州市", ("鼓楼区", "台江区")), ("泉州市", ("丰泽区", "晋江市"))),
    ),
    ("湖北省", 4, (("武汉市", ("武昌区", "洪山区", "江汉区")), ("宜昌市", ("西陵区",)))),
    ("湖南省", 3.5, (("长沙市", ("岳麓区", "天心区", "开福区")), ("株洲市", ("天元区",)))),
    ("安徽省", 3.5, (("合肥市", ("蜀山区", "包河区")), ("芜湖市", ("镜湖区",)))),
    ("河北省", 3.5, (("石家庄市", ("长安区", "桥西区")), ("保定市", ("竞秀区",)))),
    ("陕西省", 2.5, (("西安市", ("雁塔区", "碑林区", "未央区")),)),
    ("重庆市", 2.5, (("重庆市", ("渝中区", "江北区", "渝北区", "沙坪坝区")),)),
    ("辽宁省", 2.5, (("沈阳市", ("和平区", "浑南区")), ("大连市", ("中山区", "甘井子区")))),
    ("江西省", 2, (("南昌市", ("东湖区", "红谷滩区")),)),
    ("广西壮族自治区", 2, (("南宁市", ("青秀区", "西乡塘区")), ("桂林市", ("象山区",)))),
    ("云南省", 2, (("昆明市", ("五华区", "盘龙区")),)),
    ("天津市", 1.5, (("天津市", ("和平区", "南开区", "河西区")),)),
    ("山西省", 1.5, (("太原市", ("小店区", "迎泽区")),)),
    ("黑龙江省", 1.2, (("哈尔滨市", ("南岗区", "道里区")),)),
    ("贵州省", 1.2, (("贵阳市", ("南明区", "观山湖区")),)),
    ("吉林省", 1, (("长春市", ("朝阳区", "南关区")),)),
    ("内蒙古自治区", 0.8, (("呼和浩特市", ("赛罕区", "新城区")),)),
    ("甘肃省", 0.7, (("兰州市", ("城关区", "七里河区")),)),
    ("新疆维吾尔自治区", 0.6, (("乌鲁木齐市", ("天山区", "沙依巴克区")),)),
    ("海南省", 0.6, (("海口市", ("龙华区", "美兰区")), ("三亚市", ("吉阳区",)))),
    ("宁夏回族自治区", 0.3, (("银川市", ("兴庆区", "金凤区")),)),
    ("青海省", 0.2, (("西宁市", ("城西区", "城中区")),)),
    ("西藏自治区", 0.1, (("拉萨市", ("城关区",)),)),
)
STREETS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "文三路",
    "科技路",
    "长江路",
    "和平路",
    "新华路",
    "学府路",
    "滨江大道",
    "东风路",
    "朝阳路",
    "湖滨路",
    "世纪大道",
    "青年路",
)
ESTATES = ("阳光花园", "锦绣苑", "翠湖小区", "金色家园", "华府", "万科城", "碧桂园", "绿城百合", "保利花园", "御景湾")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鑫宇浩凯婷雪琳晨欣怡子涵梓轩思雨佳"

# Express companies (as ``Order.carrier`` holds them: their Chinese names) and their shares.
CARRIERS: tuple[tuple[str, str, float], ...] = (
    ("中通快递", "ZT", 0.26),
    ("圆通速递", "YT", 0.2),
    ("韵达快递", "YD", 0.17),
    ("申通快递", "ST", 0.12),
    ("顺丰速运", "SF", 0.15),
    ("京东物流", "JD", 0.1),
)

# Why orders ended as they did (stored in English: the order page translates the known ones).
EXPIRED_REASON = "payment deadline passed"
BUYER_CANCEL_REASONS = (
    "No longer needed",
    "Wrong address or details",
    "Found it cheaper elsewhere",
    "cancelled by buyer",
)
REFUND_REASONS = (
    "refund: no longer needed",
    "refund: quality problem",
    "refund: wrong item sent",
    "refund: did not arrive in time",
)


def flash_price(list_price: Decimal, discount: float) -> Decimal:
    """A live-show price: the list price times ``discount``, ending in .90 under ¥100 and in 9 above."""
    raw = float(list_price) * discount
    if raw < 100:
        return max(Decimal("1.90"), Decimal(int(raw)) + Decimal("0.90"))
    return Decimal(int(raw) // 10 * 10 + 9)
