"""Identity normalisers: one phone, one drop point, however they are written.

Risk control links buyers who share a phone or a shipping address (and fulfilment merges
orders going to one address). A scalper jigs one drop point into many spellings (地址变形):
``文三路100号3幢1202室``, ``文三路 100 号 3 号楼 Rm 1202``, ``文三路１００號３棟12-02``... These
functions map every such spelling to one key, and keep genuinely different drop points apart.

Phones
------
:func:`normalise_phone` gives the 11-digit form of a mainland mobile (``apps.core.phone`` does the
country code, trunk ``0``, spaces, dashes and full-width digits) and also accepts dots and
parentheses (``(+86) 139.1111.0000``, ``+86 (0)139 1111 0000``); anything that is not a mainland
mobile is ``None``: a landline or a foreign number links nobody here. ``apps.core.phone`` is left
as it is, because the stored form of a buyer's phone (the per-buyer limit) follows it.

Addresses: the canonical key
----------------------------
``normalise_address(addr)`` returns ``"<region>|<street>"``:

* ``region`` is the province, city and district with their suffixes removed and concatenated:
  ``浙江省 / 杭州市 / 西湖区`` -> ``浙江杭州西湖``. Suffixes removed: province ``省``, ``市``
  (municipalities), ``自治区`` with its people (``广西壮族自治区`` -> ``广西``), ``特别行政区``;
  city ``市``, ``地区``, ``盟``, ``(…族)自治州``; district ``新区``, ``区``, ``县``, ``市``
  (county-level cities), ``(…族)自治县/旗``. A suffix is only removed when at least two characters
  stay (``矿区`` stays ``矿区``). For the four municipalities the city repeats the province (or is
  ``市辖区``) and is dropped: ``北京市北京市海淀区`` == ``北京海淀区``. The province is kept in the key
  (it is required in our order body), so an address without it is a different key.
* ``street`` is the detail after the folding below. If the detail repeats the region (a pasted
  one-line address), the repetition is removed.

A one-line string is parsed the same way: the province from the table of the 34 province-level
names, then a city up to ``市/州/盟/地区`` and a district up to ``区/县/市/旗`` (at most seven
characters each). Without the district's suffix a one-line string cannot tell where the street
starts (``浙江杭州西湖文三路`` is not split), so such a string keys differently from the dict form.
A key given back to ``normalise_address`` returns itself (``|`` marks the region's end).

Folding, in order (all of it applies to the street; the first four to the region too):

1. Unicode NFKC (full-width digits and letters -> ASCII, ideographic space -> space), lower case.
2. Traditional -> simplified for the characters that matter in addresses (號 棟 樓 層 單 區 縣
   門 東 廣...): a table of about eighty, not a full converter.
3. Dashes unified (``—``, ``－``, ``–`` -> ``-``), ``#`` -> ``号`` (``3#楼`` is ``3号楼``).
4. Every space and punctuation mark removed: only letters, digits, CJK ideographs and ``-`` stay.
   So ``文 三 路`` == ``文三路``. (Consequence: ``100 3幢`` reads ``1003幢``; write ``100号``.)
5. Chinese numerals before a unit marker (号 栋 幢 座 楼 单元 层 室 舍 期 组 弄 区 排 户 房 巷) become
   digits, and ``第`` before such a number goes: ``第三号楼`` == ``3号楼``, ``十二层`` == ``12层``,
   ``蓝田二舍`` == ``蓝田2舍``. Numerals elsewhere are names and stay (``三里屯``, ``八一路``).
6. English words: ``room``/``rm`` before a number go; ``no`` before a number -> ``…号``;
   ``bldg``/``building``/``block``/``blk``/``tower`` N -> N栋; ``unit`` N -> N单元; ``N f``/``floor
   N`` -> N层.
7. Buildings: ``幢``, ``座``, ``号楼``, ``号栋``, ``号幢``, ``号座`` -> ``栋``; a letter before ``楼`` is a
   building too (``A楼`` == ``A座``). **Decision on 楼**: after a number, ``号楼`` is a building
   (``3号楼`` == ``3栋``) but a bare ``N楼`` is a floor (``12楼03号`` is floor 12, room 03, as people
   say ``三楼`` for the third floor) and becomes ``N层``.
8. Floor and room: ``12层03`` -> ``1203``; ``12层1203`` -> ``1203`` (the floor repeats the room's
   first digits); ``12-03`` -> ``1203`` when the second part is exactly two digits and it does not
   follow a road name (``科技路5-12号`` is a street number and stays); ``3-2-1202`` (one to three,
   one or two, three or four digits) -> ``3栋2单元1202``, the usual building-unit-room shorthand.
9. The room marker: ``室``, ``房``, ``房间``, ``户``, ``号``, ``号房``, ``号室`` after the last number go
   (``1202室`` == ``1202`` == ``Rm 1202``); ``小区`` goes (a generic word: ``阳光小区3栋`` ==
   ``阳光3栋``).

Steps 5-9 are repeated until nothing changes (at most a few rounds), so the key is a fixed point.
Not merged on purpose: different rooms, buildings, units, street numbers, roads, districts, cities;
``3号`` and ``3栋`` (a street number is not a building); a missing district or province.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any, NamedTuple

from apps.core.phone import normalize_cn_mobile

__all__ = ["AddressKey", "address_key_parts", "normalise_address", "normalise_phone"]

# --- phones -----------------------------------------------------------------------------------

# Dots, parentheses and middle dots people put in numbers; core.phone already takes spaces and dashes.
_PHONE_DROP = str.maketrans({c: None for c in ".．()（）·・/"})


def normalise_phone(raw: object) -> str | None:
    """The 11-digit form of a mainland mobile, or None when ``raw`` is not one (or not text)."""
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    if len(raw) == 11 and raw.isascii() and raw.isdigit():
        # As most apps send it (this runs for every order attempt on the hot path): nothing to
        # drop or fold, no country or trunk prefix fits in 11 digits, so it is a mobile exactly
        # when it has a mobile's first two digits (``core.phone``'s ``1[3-9]`` and 9 more).
        return raw if raw[0] == "1" and raw[1] in "3456789" else None
    return normalize_cn_mobile(raw.translate(_PHONE_DROP))


# --- addresses: character folding ---------------------------------------------------------------

# Traditional -> simplified, only for characters that occur in addresses (not a full converter).
_TRADITIONAL = (
    "號棟樓層單區縣鎮鄉門東廣華陽寧龍慶雲貴陝遼蘇齊濱爾烏魯內壯維莊學館場"
    "廈國際開發鐵軍灣橋馬豐興嶺鳳黃蘭頭溝義進濟灘園舊紅綠廠電車環蓮觀樂寶萬嶼總滬閩粵臺兩島"
)
_TRAD = str.maketrans(
    _TRADITIONAL,
    "号栋楼层单区县镇乡门东广华阳宁龙庆云贵陕辽苏齐滨尔乌鲁内壮维庄学馆场厦国际开发铁军湾桥马丰兴岭凤黄兰头沟义进济滩园旧红绿厂电车环莲观乐宝万屿总沪闽粤台两岛",
)

_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−﹣－～~"} | {"#": "号", "＃": "号"})
_SPACES = re.compile(r"\s+")
_KEPT = r"0-9a-z\-\u3400-\u4dbf\u4e00-\u9fff"  # what folded text is made of; "|" too in a key
_NOT_KEPT = re.compile(f"[^{_KEPT}]+")
_NOT_KEPT_KEY = re.compile(f"[^{_KEPT}|]+")


# Text already folded: only kept characters (a CJK unified ideograph has no compatibility form, and
# no case), none of them a traditional one.
_FOLDED = re.compile(f"[{_KEPT}]*")
_FOLDED_KEY = re.compile(f"[{_KEPT}|]*")
_HAS_TRADITIONAL = re.compile(f"[{_TRADITIONAL}]")


def _fold(text: str, *, keep_bar: bool = False) -> str:
    """Steps 1-4 of the module docstring: one spelling per character, no spaces or punctuation.
    Text that is already so (most address lines as typed) comes back as it is, without the
    steps: this runs for every order attempt on the hot path."""
    if (_FOLDED_KEY if keep_bar else _FOLDED).fullmatch(text) and not _HAS_TRADITIONAL.search(text):
        return text
    return _fold_steps(text, keep_bar=keep_bar)


def _fold_steps(text: str, *, keep_bar: bool = False) -> str:
    text = unicodedata.normalize("NFKC", _SPACES.sub("", text)).lower().translate(_TRAD).translate(_DASHES)
    return (_NOT_KEPT_KEY if keep_bar else _NOT_KEPT).sub("", text)


# --- addresses: the region ----------------------------------------------------------------------

_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
# The 55 minority peoples (and 各族) that name autonomous regions, prefectures, counties and banners.
_PEOPLES = (
    "(?:蒙古|回|藏|维吾尔|苗|彝|壮|布依|朝鲜|满|侗|瑶|白|土家|哈尼|哈萨克|傣|黎|傈僳|佤|畲|高山|拉祜|水|东乡|纳西|"
    "景颇|柯尔克孜|土|达斡尔|仫佬|羌|布朗|撒拉|毛南|仡佬|锡伯|阿昌|普米|塔吉克|怒|乌孜别克|俄罗斯|鄂温克|德昂|保安|"
    "裕固|京|塔塔尔|独龙|鄂伦春|赫哲|门巴|珞巴|基诺|各)族"
)
_MUNICIPALITIES = frozenset({"北京", "天津", "上海", "重庆"})
_PROVINCE = re.compile(
    "^(北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|"
    "贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门)"
    f"(省|市|特别行政区|{_PEOPLES}*自治区)?"
)
_CITY = re.compile(f"^({_HAN}{{2,7}}?)(?:市|地区|盟|{_PEOPLES}*自治州)")
_DISTRICT = re.compile(f"^({_HAN}{{2,7}}?)(?:新区|区|县|市|旗|{_PEOPLES}*自治[县旗])")
_PROVINCE_FIELD = re.compile(f"^(.{{2,}}?)(?:省|市|特别行政区|{_PEOPLES}*自治区)$")
_CITY_FIELD = re.compile(f"^(.{{2,}}?)(?:市|地区|盟|{_PEOPLES}*自治州)$")
_DISTRICT_FIELD = re.compile(f"^(.{{2,}}?)(?:新区|区|县|市|旗|{_PEOPLES}*自治[县旗])$")
_NO_CITY = frozenset({"", "市辖区", "市辖", "县"})


def _field_stem(text: str, pattern: re.Pattern[str]) -> str:
    m = pattern.match(text)
    return m.group(1) if m else text


def _join_region(province: str, city: str, district: str) -> str:
    if city in _NO_CITY or (province in _MUNICIPALITIES and city == province):
        city = ""
    if district in _NO_CITY:
        district = ""
    return province + city + district


def _parse_region(text: str) -> tuple[str, str, bool]:
    """(region stems, the rest, whether any region part was found) of a folded one-line address."""
    text = text.replace("市辖区", "")
    province = ""
    m = _PROVINCE.match(text)
    # 吉林市 is a city of 吉林省: a province name followed by 市 is only a province for municipalities.
    if m and (m.group(2) or m.group(1) in _MUNICIPALITIES or not text[m.end() :].startswith("市")):
        province, text = m.group(1), text[m.end() :]
    city = district = ""
    m = _CITY.match(text)
    if m:
        city, text = m.group(1), text[m.end() :]
    m = _DISTRICT.match(text)
    if m:
        district, text = m.group(1), text[m.end() :]
    return _join_region(province, city, district), text, bool(province or city or district)


def _strip_repeated_region(region: str, street: str) -> str:
    """The street without a leading copy of (the end of) the region: a pasted one-line address."""
    while region:
        rep, rest, found = _parse_region(street)
        if not found or not rep or not region.endswith(rep):
            return street
        street = rest
    return street


# --- addresses: the street ----------------------------------------------------------------------

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_MARKER = "(?=单元|号|栋|幢|座|楼|层|室|舍|期|组|弄|区|排|户|房|巷)"
_CN_NUMBER = re.compile(f"第?([零〇一二两三四五六七八九十百]+){_MARKER}")
_ORDINAL = re.compile(f"第([0-9]+){_MARKER}")
_ROOM_WORD = re.compile(r"(?<![a-z])(?:room|rm)(?=[0-9])")
_NO_WORD = re.compile(r"(?<![a-z])no([0-9]+)")
_BUILDING_WORD = re.compile(r"(?<![a-z])(?:bldg|building|block|blk|tower)([0-9]+|[a-z](?![a-z]))")
_UNIT_WORD = re.compile(r"(?<![a-z])unit([0-9]+)")
_FLOOR_WORD = re.compile(r"(?<![a-z])(?:floor|fl)([0-9]+)")
_FLOOR_F = re.compile(r"(?<![0-9])([0-9]+)(?:floor|fl|f)(?![a-z])")
_BUILDING_HAO = re.compile(r"(?<=[0-9a-z])号[楼栋幢座]")
_BUILDING_ALT = re.compile(r"(?<=[0-9a-z])[幢座]")
_BUILDING_LETTER_LOU = re.compile(r"(?<=[a-z])楼")
_FLOOR_LOU = re.compile(r"(?<=[0-9])楼")
_FLOOR_REPEATS_ROOM = re.compile(r"(?<![0-9])([0-9]{1,2})层(\1[0-9]{2})(?![0-9])")
_FLOOR_ROOM = re.compile(r"(?<![0-9])([0-9]{1,2})层([0-9]{2})(?![0-9])")
_BUILDING_UNIT_ROOM = re.compile(r"(?<![0-9\-路街道巷弄])([0-9]{1,3})-([0-9]{1,2})-([0-9]{3,4})(?![0-9\-])")
_FLOOR_DASH_ROOM = re.compile(r"(?<![0-9\-路街道巷弄])([0-9]{1,2})-([0-9]{2})(?![0-9\-])")
_ROOM_SUFFIX = re.compile(r"(?<=[0-9])(?:号房|号室|房间|室|房|户|号)$")


def _cn_number(numeral: str) -> str:
    """``三`` -> 3, ``十二`` -> 12, ``一百零五`` -> 105, ``一二〇三`` -> 1203 (read digit by digit)."""
    if "十" not in numeral and "百" not in numeral:
        return "".join(str(_CN_DIGITS[c]) for c in numeral)
    total = current = 0
    for c in numeral:
        if c == "十":
            total += (current or 1) * 10
            current = 0
        elif c == "百":
            total += (current or 1) * 100
            current = 0
        else:
            current = _CN_DIGITS[c]
    return str(total + current)


_CN_NUMERAL_CHAR = re.compile("[零〇一二两三四五六七八九十百]")
_ASCII_LETTER = re.compile("[a-z]")
_ROOM_SUFFIX_LAST = frozenset("号房室间户")


def _street_round(s: str) -> str:
    """One round of steps 5-9. Each substitution runs only when the characters it needs are in the
    street: most streets need few of them (this runs for every order on the hot path), and a
    substitution whose characters are absent changes nothing. The checks are made in order, on
    the street as the substitutions before have left it."""
    if _CN_NUMERAL_CHAR.search(s):
        s = _CN_NUMBER.sub(lambda m: _cn_number(m.group(1)), s)
    if "第" in s:
        s = _ORDINAL.sub(r"\1", s)
    if _ASCII_LETTER.search(s):
        s = _ROOM_WORD.sub("", s)
        s = _NO_WORD.sub(r"\1号", s)
        s = _BUILDING_WORD.sub(r"\1栋", s)
        s = _UNIT_WORD.sub(r"\1单元", s)
        s = _FLOOR_WORD.sub(r"\1层", s)
        s = _FLOOR_F.sub(r"\1层", s)
    if "号" in s:
        s = _BUILDING_HAO.sub("栋", s)
    if "幢" in s or "座" in s:
        s = _BUILDING_ALT.sub("栋", s)
    if "楼" in s:
        s = _BUILDING_LETTER_LOU.sub("栋", s)
        s = _FLOOR_LOU.sub("层", s)
    if "层" in s:
        s = _FLOOR_REPEATS_ROOM.sub(r"\2", s)
        s = _FLOOR_ROOM.sub(r"\1\2", s)
    if "-" in s:
        s = _BUILDING_UNIT_ROOM.sub(r"\1栋\2单元\3", s)
        s = _FLOOR_DASH_ROOM.sub(r"\1\2", s)
    if s and s[-1] in _ROOM_SUFFIX_LAST:
        s = _ROOM_SUFFIX.sub("", s)
    return s.replace("小区", "")


_MAX_ROUNDS = 8


def _street(region: str, street: str) -> str:
    for _ in range(_MAX_ROUNDS):
        before = street
        street = _street_round(_strip_repeated_region(region, street))
        if street == before:
            break
    return street


# --- addresses: public API ----------------------------------------------------------------------


class AddressKey(NamedTuple):
    """An address split for graph features: ``region`` (province+city+district stems) and ``street``."""

    region: str
    street: str

    @property
    def key(self) -> str:
        return f"{self.region}|{self.street}"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


@functools.lru_cache(maxsize=8192)
def _region(province: str, city: str, district: str) -> str:
    """The region stems of an address's three fields. Cached: China has about 3,000 districts, so
    the same three fields come back order after order."""
    return _join_region(
        _field_stem(_fold(province), _PROVINCE_FIELD),
        _field_stem(_fold(city), _CITY_FIELD),
        _field_stem(_fold(district), _DISTRICT_FIELD),
    )


def address_key_parts(addr: dict[str, Any] | str) -> AddressKey:
    """The canonical (region, street) of an address dict (province, city, district, detail) or of a
    one-line string. See the module docstring for the canonical form."""
    if isinstance(addr, dict):
        region = _region(_text(addr.get("province")), _text(addr.get("city")), _text(addr.get("district")))
        street = _fold(_text(addr.get("detail")))
    else:
        text = _fold(_text(addr), keep_bar=True)
        if "|" in text:  # a key of ours: the region is already in its canonical form
            region, _, street = text.partition("|")
            street = street.replace("|", "")
        else:
            region, street, _ = _parse_region(text)
    return AddressKey(region, _street(region, street))


def normalise_address(addr: dict[str, Any] | str) -> str:
    """The canonical key ``"<region>|<street>"`` of an address: equal keys are one drop point."""
    return address_key_parts(addr).key
