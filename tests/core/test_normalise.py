"""The identity normalisers of risk control: one phone, one drop point, however written."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.normalise import _TRAD, address_key_parts, normalise_address, normalise_phone
from apps.core.phone import normalize_phone


def addr(province: str, city: str, district: str, detail: str) -> dict[str, str]:
    return {
        "name": "王小明",
        "phone": "13800001001",
        "province": province,
        "city": city,
        "district": district,
        "detail": detail,
    }


HZ = ("浙江省", "杭州市", "西湖区")

# (id, a, b): one drop point written two ways.
SAME = [
    ("fullwidth-digits", addr(*HZ, "文三路100号3幢1202室"), addr(*HZ, "文三路１００号３幢１２０２室")),
    ("trad-hao-dong", addr(*HZ, "文三路100号3幢1202室"), addr(*HZ, "文三路100號3棟1202室")),
    ("zhuang-dong-zuo", addr(*HZ, "文三路100号3幢1202室"), addr(*HZ, "文三路100号3座1202室")),
    ("haolou-is-building", addr(*HZ, "文三路100号3号楼1202室"), addr(*HZ, "文三路100号3栋1202")),
    ("hash-lou", addr(*HZ, "文三路100号3#楼1202"), addr(*HZ, "文三路100号3栋1202室")),
    ("room-rm", addr(*HZ, "文三路100号3幢1202室"), addr(*HZ, "文三路100号3幢 Rm 1202")),
    ("room-english", addr(*HZ, "文三路100号3幢 Room1202"), addr(*HZ, "文三路100号3幢1202")),
    ("floor-dash-room", addr(*HZ, "文三路100号3幢12-03"), addr(*HZ, "文三路100号3幢1203室")),
    ("floor-ceng-room", addr(*HZ, "文三路100号3幢12层03室"), addr(*HZ, "文三路100号3幢1203")),
    ("floor-lou-room-hao", addr(*HZ, "文三路100号3幢12楼03号"), addr(*HZ, "文三路100号3幢1203室")),
    ("floor-repeats-room", addr(*HZ, "文三路100号3幢12楼1203室"), addr(*HZ, "文三路100号3幢1203")),
    ("spaces-every-char", addr(*HZ, "文 三 路 1 0 0 号 3 幢 1 2 0 2 室"), addr(*HZ, "文三路100号3幢1202室")),
    ("ideographic-spaces", addr(*HZ, "文三路\u3000100号\u30003幢\u30001202"), addr(*HZ, "文三路100号3幢1202")),
    ("punctuation", addr(*HZ, "文三路100号，3幢、1202室。"), addr(*HZ, "文三路100号3幢1202室")),
    ("suffixes-optional", addr("浙江", "杭州", "西湖", "文三路100号"), addr(*HZ, "文三路100号")),
    ("one-line-vs-dict", "浙江杭州西湖区文三路100号3幢1202室", addr(*HZ, "文三路100号3幢1202室")),
    ("one-line-with-suffixes", "浙江杭州西湖区文三路100号", "浙江省杭州市西湖区文三路100号"),
    ("detail-repeats-region", addr(*HZ, "浙江省杭州市西湖区文三路100号"), addr(*HZ, "文三路100号")),
    ("cn-numeral-building", addr(*HZ, "文三路100号三号楼1202"), addr(*HZ, "文三路100号3号楼1202")),
    ("ordinal-building", addr(*HZ, "文三路100号第三栋1202室"), addr(*HZ, "文三路100号3栋1202")),
    (
        "bj-municipality-city",
        addr("北京市", "北京市", "海淀区", "中关村大街27号1101室"),
        addr("北京", "市辖区", "海淀区", "中关村大街27号1101"),
    ),
    ("bj-one-line", "北京市海淀区中关村大街27号1101", addr("北京市", "北京市", "海淀区", "中关村大街27号1101室")),
    (
        "sh-new-area",
        addr("上海市", "上海市", "浦东新区", "张杨路500弄5号1202室"),
        addr("上海", "上海", "浦东", "张杨路 500 弄 5 号 1202"),
    ),
    (
        "sz-letter-building",
        addr("广东省", "深圳市", "南山区", "科技园南区高新南一道 A座 1503"),
        addr("广东省", "深圳市", "南山区", "科技园南区高新南一道A栋1503室"),
    ),
    (
        "sz-letter-lou",
        addr("广东省", "深圳市", "南山区", "科兴科学园B楼 15-03"),
        addr("广东省", "深圳市", "南山区", "科兴科学园b座1503"),
    ),
    (
        "cd-unit",
        addr("四川省", "成都市", "武侯区", "人民南路四段9号2栋二单元1202"),
        addr("四川", "成都", "武侯区", "人民南路四段9号2幢2单元1202室"),
    ),
    (
        "cd-building-unit-room-dashes",
        addr("四川省", "成都市", "武侯区", "人民南路四段9号2-2-1202"),
        addr("四川省", "成都市", "武侯区", "人民南路四段9号2栋2单元1202室"),
    ),
    ("campus-dorm", addr(*HZ, "浙江大学紫金港校区蓝田2舍302"), addr(*HZ, "浙江大学紫金港校区 蓝田二舍 302室")),
    (
        "village-numerals",
        addr("浙江省", "金华市", "义乌市", "佛堂镇田心村三组十五号"),
        addr("浙江", "金华", "义乌", "佛堂镇田心村3组15号"),
    ),
    (
        "autonomous-prefecture",
        addr("吉林省", "延边朝鲜族自治州", "延吉市", "光明街88号"),
        addr("吉林", "延边", "延吉", "光明街88号"),
    ),
    (
        "autonomous-region",
        addr("广西壮族自治区", "南宁市", "青秀区", "民族大道100号"),
        addr("广西", "南宁", "青秀区", "民族大道100号"),
    ),
    ("xiaoqu-optional", addr(*HZ, "阳光小区3栋1202"), addr(*HZ, "阳光3幢1202室")),
    ("trad-region", addr("浙江省", "杭州市", "西湖區", "文三路100號"), addr(*HZ, "文三路100号")),
    (
        "floor-f",
        addr("广东省", "深圳市", "福田区", "深南大道6008号特区报业大厦12F03"),
        addr("广东省", "深圳市", "福田区", "深南大道6008号特区报业大厦1203室"),
    ),
    (
        "no-english",
        addr("广东省", "广州市", "天河区", "天河路 No.208 中信广场 801"),
        addr("广东省", "广州市", "天河区", "天河路208号中信广场801室"),
    ),
]

# (id, a, b): two different drop points that must stay apart.
DIFFERENT = [
    ("other-room", addr(*HZ, "文三路100号3幢1202室"), addr(*HZ, "文三路100号3幢1203室")),
    ("other-building", addr(*HZ, "文三路100号3幢1202室"), addr(*HZ, "文三路100号4幢1202室")),
    ("other-street-number", addr(*HZ, "文三路100号3幢1202室"), addr(*HZ, "文三路101号3幢1202室")),
    ("other-road", addr(*HZ, "文三路100号"), addr(*HZ, "文二路100号")),
    ("other-district", addr(*HZ, "文三路100号"), addr("浙江省", "杭州市", "拱墅区", "文三路100号")),
    ("other-city-same-district-name", addr("江西省", "南昌市", "西湖区", "文三路100号"), addr(*HZ, "文三路100号")),
    (
        "chaoyang-beijing-vs-changchun",
        addr("北京市", "北京市", "朝阳区", "建国路88号"),
        addr("吉林省", "长春市", "朝阳区", "建国路88号"),
    ),
    (
        "other-unit",
        addr("四川省", "成都市", "武侯区", "人民南路9号2栋1单元1202"),
        addr("四川省", "成都市", "武侯区", "人民南路9号2栋2单元1202"),
    ),
    ("building-vs-floor", addr(*HZ, "文三路100号3号楼"), addr(*HZ, "文三路100号3楼")),
    ("hao-vs-building", addr(*HZ, "文三路100号3号1202"), addr(*HZ, "文三路100号3栋1202")),
    (
        "floor-dash-not-street-number",
        addr("广东省", "深圳市", "南山区", "科技路5-12号"),
        addr("广东省", "深圳市", "南山区", "科技路512号"),
    ),
    ("dorm-other-building", addr(*HZ, "浙江大学紫金港校区蓝田2舍302"), addr(*HZ, "浙江大学紫金港校区蓝田3舍302")),
    ("dorm-other-room", addr(*HZ, "浙江大学紫金港校区蓝田2舍302"), addr(*HZ, "浙江大学紫金港校区蓝田2舍303")),
    ("other-campus", addr(*HZ, "浙江大学紫金港校区蓝田2舍302"), addr(*HZ, "浙江大学玉泉校区蓝田2舍302")),
    (
        "village-other-group",
        addr("浙江省", "金华市", "义乌市", "佛堂镇田心村三组15号"),
        addr("浙江省", "金华市", "义乌市", "佛堂镇田心村四组15号"),
    ),
    (
        "village-other-village",
        addr("浙江省", "金华市", "义乌市", "佛堂镇田心村3组15号"),
        addr("浙江省", "金华市", "义乌市", "佛堂镇塘下村3组15号"),
    ),
    (
        "sh-other-lane",
        addr("上海市", "上海市", "浦东新区", "张杨路500弄5号1202室"),
        addr("上海市", "上海市", "浦东新区", "张杨路501弄5号1202室"),
    ),
    (
        "sh-other-lane-building",
        addr("上海市", "上海市", "浦东新区", "张杨路500弄5号1202室"),
        addr("上海市", "上海市", "浦东新区", "张杨路500弄6号1202室"),
    ),
    (
        "letter-buildings",
        addr("广东省", "深圳市", "南山区", "科兴科学园A座1503"),
        addr("广东省", "深圳市", "南山区", "科兴科学园B座1503"),
    ),
    (
        "numeral-place-name-kept",
        addr("北京市", "北京市", "朝阳区", "三里屯路19号"),
        addr("北京市", "北京市", "朝阳区", "3里屯路19号"),
    ),
    (
        "other-province-same-road",
        addr("江苏省", "南京市", "鼓楼区", "中山路100号"),
        addr("福建省", "福州市", "鼓楼区", "中山路100号"),
    ),
    ("missing-district", addr("浙江省", "杭州市", "", "文三路100号"), addr(*HZ, "文三路100号")),
    (
        "jilin-city-vs-province",
        addr("吉林省", "吉林市", "船营区", "北京路1号"),
        addr("吉林省", "长春市", "船营区", "北京路1号"),
    ),
    ("floor-room-vs-room", addr(*HZ, "文三路100号3幢12-03"), addr(*HZ, "文三路100号3幢1230")),
    ("other-floor", addr(*HZ, "文三路100号3幢12层03室"), addr(*HZ, "文三路100号3幢13层03室")),
    (
        "dash-building-unit-other",
        addr("四川省", "成都市", "武侯区", "人民南路9号2-1-1202"),
        addr("四川省", "成都市", "武侯区", "人民南路9号2-2-1202"),
    ),
    ("street-number-not-merged-with-building", addr(*HZ, "文三路100号3幢"), addr(*HZ, "文三路1003幢")),
]


@pytest.mark.parametrize(("a", "b"), [pytest.param(a, b, id=i) for i, a, b in SAME])
def test_variants_of_one_drop_point_get_one_key(a, b):
    assert normalise_address(a) == normalise_address(b)


@pytest.mark.parametrize(("a", "b"), [pytest.param(a, b, id=i) for i, a, b in DIFFERENT])
def test_different_drop_points_keep_different_keys(a, b):
    assert normalise_address(a) != normalise_address(b)


def test_the_table_is_big_and_balanced():
    assert len(SAME) + len(DIFFERENT) >= 40
    assert min(len(SAME), len(DIFFERENT)) >= 15


@pytest.mark.parametrize(
    ("written", "key"),
    [
        pytest.param(addr(*HZ, "文三路 100 号 3 号楼 Rm 1202"), "浙江杭州西湖|文三路100号3栋1202", id="hangzhou"),
        pytest.param("北京市北京市海淀区中关村大街一号", "北京海淀|中关村大街1", id="beijing-one-line"),
        pytest.param(addr("四川省", "成都市", "武侯区", "9号2-2-1202"), "四川成都武侯|9号2栋2单元1202", id="dashes"),
        pytest.param(addr("", "", "", ""), "|", id="empty"),
        pytest.param({"province": None, "city": 3, "detail": ["x"]}, "3|", id="junk-values"),
    ],
)
def test_canonical_form(written, key):
    assert normalise_address(written) == key


def test_key_parts_split_region_and_street():
    parts = address_key_parts(addr(*HZ, "浙江省杭州市西湖区文三路100号3幢1202室"))
    assert (parts.region, parts.street) == ("浙江杭州西湖", "文三路100号3栋1202")
    assert parts.key == normalise_address("浙江杭州西湖区文三路100号3幢1202室")


def test_traditional_table_maps_into_characters_it_does_not_map_again():
    assert all(chr(v) not in {chr(k) for k in _TRAD} for v in _TRAD.values() if isinstance(v, int))


MOBILE = "13911110000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("13911110000", MOBILE, id="plain"),
        pytest.param("+86 139 1111 0000", MOBILE, id="plus86-spaces"),
        pytest.param("+86-139-1111-0000", MOBILE, id="plus86-dashes"),
        pytest.param("0086 13911110000", MOBILE, id="0086"),
        pytest.param("8613911110000", MOBILE, id="86"),
        pytest.param("139.1111.0000", MOBILE, id="dots"),
        pytest.param("(+86) 139 1111 0000", MOBILE, id="parenthesised-country"),
        pytest.param("+86 (0)139 1111 0000", MOBILE, id="parenthesised-trunk"),
        pytest.param("１３９１１１１００００", MOBILE, id="fullwidth"),
        pytest.param("（＋８６）１３９－１１１１－００００", MOBILE, id="fullwidth-parens"),
        pytest.param("139\u30001111\u30000000", MOBILE, id="ideographic-space"),
        pytest.param("013911110000", MOBILE, id="trunk-zero"),
        pytest.param("17012345678", "17012345678", id="virtual-operator-170"),
        pytest.param("0571-8888-1234", None, id="landline"),
        pytest.param("+852 9123 4567", None, id="hong-kong"),
        pytest.param("+1 415 555 0100", None, id="usa"),
        pytest.param("12911110000", None, id="not-a-mobile-prefix"),
        pytest.param("1391111000", None, id="ten-digits"),
        pytest.param("¹³⁹¹¹¹¹⁰⁰⁰⁰", None, id="superscripts"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
        pytest.param(13911110000, None, id="not-text"),
    ],
)
def test_normalise_phone(raw, expected):
    assert normalise_phone(raw) == expected


def test_phone_leaves_core_stored_form_alone():
    # The buyer's stored phone (per-buyer limit) still follows apps.core.phone unchanged.
    assert normalize_phone("(010) 6552-9988") == "(010)65529988"


# --- properties ----------------------------------------------------------------------------

PROVINCES = ["浙江省", "浙江", "北京市", "上海", "广东省", "四川", "广西壮族自治区", "吉林省", ""]
CITIES = ["杭州市", "杭州", "北京市", "市辖区", "深圳市", "成都", "延边朝鲜族自治州", "吉林市", ""]
DISTRICTS = ["西湖区", "西湖", "海淀区", "浦东新区", "南山区", "义乌市", "延吉市", "市中区", ""]
PIECES = [
    "文三路",
    "100",
    "号",
    "號",
    "3",
    "三",
    "幢",
    "栋",
    "棟",
    "座",
    "号楼",
    "楼",
    "12",
    "-",
    "03",
    "层",
    "室",
    "Rm",
    "room",
    "1202",
    "单元",
    "二",
    "第",
    "十",
    "小区",
    "蓝田",
    "舍",
    "#",
    "Ａ",
    "b",
    "F",
    "No.",
    "村",
    "组",
    "弄",
    "１",
    "，",
    "（",
    "）",
    "区",
    "市",
    "县",
    "西湖区",
    "杭州市",
]
details = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
addresses = st.builds(addr, st.sampled_from(PROVINCES), st.sampled_from(CITIES), st.sampled_from(DISTRICTS), details)
one_line = st.tuples(addresses).map(lambda t: "".join(t[0][k] for k in ("province", "city", "district", "detail")))
any_address = st.one_of(addresses, one_line, st.text(max_size=30))


def with_spaces(text: str, data: st.DataObject) -> str:
    mask = data.draw(st.lists(st.sampled_from(["", "", " ", "\u3000", "  "]), min_size=len(text), max_size=len(text)))
    return "".join(c + s for c, s in zip(text, mask, strict=True))


@settings(max_examples=400, deadline=None)
@given(any_address)
def test_normalise_address_is_idempotent(address):
    key = normalise_address(address)
    assert normalise_address(key) == key


@settings(max_examples=300, deadline=None)
@given(st.one_of(addresses, one_line), st.data())
def test_normalise_address_ignores_inserted_spaces(address, data):
    if isinstance(address, dict):
        spaced = {k: with_spaces(v, data) for k, v in address.items()}
    else:
        spaced = with_spaces(address, data)
    assert normalise_address(spaced) == normalise_address(address)


def _every_substitution(s: str) -> str:
    """``_street_round`` without its character checks: every substitution, every time."""
    from apps.core import normalise as n

    s = n._CN_NUMBER.sub(lambda m: n._cn_number(m.group(1)), s)
    s = n._ORDINAL.sub(r"\1", s)
    s = n._ROOM_WORD.sub("", s)
    s = n._NO_WORD.sub(r"\1号", s)
    s = n._BUILDING_WORD.sub(r"\1栋", s)
    s = n._UNIT_WORD.sub(r"\1单元", s)
    s = n._FLOOR_WORD.sub(r"\1层", s)
    s = n._FLOOR_F.sub(r"\1层", s)
    s = n._BUILDING_HAO.sub("栋", s)
    s = n._BUILDING_ALT.sub("栋", s)
    s = n._BUILDING_LETTER_LOU.sub("栋", s)
    s = n._FLOOR_LOU.sub("层", s)
    s = n._FLOOR_REPEATS_ROOM.sub(r"\2", s)
    s = n._FLOOR_ROOM.sub(r"\1\2", s)
    s = n._BUILDING_UNIT_ROOM.sub(r"\1栋\2单元\3", s)
    s = n._FLOOR_DASH_ROOM.sub(r"\1\2", s)
    s = n._ROOM_SUFFIX.sub("", s)
    return s.replace("小区", "")


_STREET_PIECES = st.sampled_from(
    [
        *"0123456789-号楼栋幢座层室房间户单元第一二两三十百零〇小区路街abflmnortu",
        "room",
        "rm",
        "no",
        "bldg",
        "building",
        "block",
        "unit",
        "floor",
        "fl",
        "号楼",
        "号房",
        "房间",
        "小区",
        "文三路",
        "西湖区",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_STREET_PIECES, max_size=14).map("".join))
def test_the_street_rounds_character_checks_skip_only_substitutions_that_change_nothing(street: str) -> None:
    from apps.core.normalise import _street_round

    assert _street_round(street) == _every_substitution(street)


# The fast paths of the hot path (every order attempt normalises its phone and address): each gives
# what the full steps give, for any text.
_FOLD_PIECES = st.sampled_from(
    [
        *"0123456789abcxyzABCZ-|#＃~～—－ \u3000\t.，,()（）·",
        *"文三路号栋室单元层小区區號棟樓臺",  # simplified and traditional
        "\u3400",  # the first CJK extension A ideograph
        "\u4dbf",
        "\u4e00",
        "\u9fff",
        "\u9fa6",
        "\uf900",  # a compatibility ideograph: NFKC maps it into the unified block
        "１２Ａｂ",
        "ﬁ",
        "Ⅻ",
        "é",
        "e\u0301",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.lists(_FOLD_PIECES, max_size=16).map("".join), st.text(max_size=20)), st.booleans())
def test_folding_text_already_folded_skips_the_steps_and_gives_what_they_give(text: str, keep_bar: bool) -> None:
    from apps.core.normalise import _fold, _fold_steps

    assert _fold(text, keep_bar=keep_bar) == _fold_steps(text, keep_bar=keep_bar)


def test_every_character_the_fold_fast_path_keeps_is_one_the_steps_leave_alone() -> None:
    """Over every code point, not a sample: a character the fast path lets through unfolded is one
    the steps leave as it is, with nothing NFKC could join to a neighbour; every traditional
    character is one the steps change."""
    import sys
    import unicodedata

    from apps.core import normalise as n

    every = list(map(chr, range(sys.maxunicode + 1)))
    assert [ch for ch in every if bool(n._FOLDED.fullmatch(ch)) != bool(n._FOLDED_KEY.fullmatch(ch))] == ["|"]
    kept = [ch for ch in every if n._FOLDED_KEY.fullmatch(ch) and not n._HAS_TRADITIONAL.search(ch)]
    assert len(kept) > 27_000  # the two CJK blocks, digits, a-z, "-" and "|"
    assert [ch for ch in kept if n._fold_steps(ch, keep_bar=True) != ch] == []
    assert [ch for ch in kept if unicodedata.combining(ch) or unicodedata.decomposition(ch)] == []
    assert all(n._fold_steps(ch) != ch for ch in n._TRADITIONAL)


def test_a_typical_street_and_phone_take_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.core import normalise as n

    def full_steps(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("the full steps ran")

    monkeypatch.setattr(n, "_fold_steps", full_steps)
    monkeypatch.setattr(n, "normalize_cn_mobile", full_steps)
    assert n._fold("文三路100号3栋1202室") == "文三路100号3栋1202室"
    assert n._fold("浙江杭州西湖|文三路100号", keep_bar=True) == "浙江杭州西湖|文三路100号"
    assert n.normalise_phone("13911110000") == "13911110000"
    assert n.normalise_phone("12911110000") is None
    for needs_steps in ("文三路100號", "文三路 100号", "a|b", "Rm1202"):
        with pytest.raises(AssertionError):
            n._fold(needs_steps)
    for needs_steps in ("139 1111 0000", "013911110000", "１３９１１１１００００"):
        with pytest.raises(AssertionError):
            n.normalise_phone(needs_steps)


_PHONE_CHARS = st.sampled_from([*"0123456789", *"0123456789", "+", "-", " ", "１", "８", "６", "٣", "¹"])


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.lists(_PHONE_CHARS, min_size=9, max_size=14).map("".join),
        st.from_regex(r"1[0-9]{10}", fullmatch=True),
        st.text(max_size=16),
    )
)
def test_an_eleven_digit_phone_skips_the_folding_and_gives_what_it_gives(raw: str) -> None:
    from apps.core.normalise import _PHONE_DROP
    from apps.core.phone import normalize_cn_mobile

    assert normalise_phone(raw) == normalize_cn_mobile(raw.translate(_PHONE_DROP))
