"""The user-agent classifier (apps/fraud/useragent.py): a table of real-looking UAs, the
simulator's genuine phones never taken for bots, its stitched UAs mostly caught, and its cost."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from apps.fraud.simulation import SCRIPT_UAS, inconsistent_user_agent, mobile_user_agent
from apps.fraud.useragent import UA_CLASSES, classify_user_agent

IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)

CASES = [
    # missing
    ("", "missing"),
    ("   ", "missing"),
    # scripts and tools
    ("python-requests/2.31.0", "script"),
    ("Python/3.11 aiohttp/3.9.5", "script"),
    ("python-httpx/0.27.0", "script"),
    ("Python-urllib/3.11", "script"),
    ("okhttp/4.12.0", "script"),
    ("Go-http-client/1.1", "script"),
    ("Go-http-client/2.0", "script"),
    ("curl/8.5.0", "script"),
    ("Wget/1.21.4", "script"),
    ("axios/1.6.8", "script"),
    ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "script"),
    ("undici", "script"),
    ("Java/17.0.9", "script"),
    ("Apache-HttpClient/4.5.14 (Java/17.0.9)", "script"),
    ("libwww-perl/6.72", "script"),
    ("PostmanRuntime/7.37.3", "script"),
    ("Scrapy/2.11.1 (+https://scrapy.org)", "script"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "script"),
    ("Dart/3.3 (dart:io)", "script"),
    ("my-grabber/0.3", "script"),  # names no platform: a library, not a browser or an app
    # headless browsers
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 "
        "Safari/537.36",
        "headless",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 "
        "Safari/537.36",
        "headless",
    ),
    (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        "headless",
    ),
    (f"{ANDROID_CHROME} Puppeteer", "headless"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Playwright/1.44 Safari/605.1.15", "headless"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0 Headless", "headless"),
    # inconsistent: parts that cannot all be true
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.230 "
        "Safari/537.36 aweme_30.1.0 NetType/WIFI",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; iPhone15,2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.230 "
        "Mobile Safari/537.36",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
        "Safari/605.1.15 Kwai/12.1.20.6734",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36; wv",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; iPhone) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
        "MicroMessenger/8.0.49",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (Linux; Android 12; PFJM10 Build/SKQ1; wv) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 aweme_29.5.0",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36 MicroMessenger/8.0.47",
        "inconsistent",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X; Android 14) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 Kwai/11.9.10.7060",
        "inconsistent",
    ),
    # mobile apps
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 aweme_31.2.0 JsSdk/2.0 NetType/4G Channel/App Store ByteLocale/zh Region/CN AppTheme/light "
        "BytedanceWebview/d8a21c6",
        "app",
    ),
    (
        "Mozilla/5.0 (Linux; Android 12; ANA-AN00 Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36 aweme_31200 JsSdk/1.0 NetType/4G "
        "app_version/31.2.0 ByteLocale/zh-CN Region/CN AppTheme/light BytedanceWebview/d8a21c6",
        "app",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; V2309A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 MMWEBID/8284 MicroMessenger/8.0.47.2560(0x28002F35) "
        "WeChat/arm64 Weixin NetType/5G Language/zh_CN",
        "app",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Kwai/12.4.30.7893 ISLP/0 StatusHT/47 KDT/PHONE iosSCH/0 TitleHT/44 NetType/WIFI ISDM/0 "
        "ICFO/0 locale/zh-Hans CT/0 Yoda/3.2.5",
        "app",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 "
        "Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090a13) XWEB/9129",
        "app",  # desktop WeChat names its client
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 AliApp(TB/10.35.10) WindVane/8.5.0 1170x2532",
        "app",
    ),
    ("Dalvik/2.1.0 (Linux; U; Android 13; V2227A Build/TP1A.220624.014)", "app"),
    ("aweme/29.5.0 (iPhone; iOS 17.1; Scale/3.00)", "app"),
    ("com.ss.android.ugc.aweme/290501 (Linux; U; Android 13; zh_CN; V2227A; Build/TP1A.220624.014)", "app"),
    (
        "Mozilla/5.0 (Linux; Android 13; M2012K11AC Build/TKQ1.220829.002; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/116.0.5845.163 Mobile Safari/537.36",
        "app",  # a plain Android WebView: inside some app
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
        "aweme_30.6.0",
        "app",  # Douyin on an iPad asking for the desktop site keeps its Mobile/ token
    ),
    # browsers
    (IOS_SAFARI, "browser"),
    (ANDROID_CHROME, "browser"),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        "browser",  # Chrome on iOS: WebKit underneath, CriOS on top
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
        "Mobile/15E148 Safari/604.1",
        "browser",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
        "Safari/537.36 Edg/124.0.2478.80",
        "browser",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
        "Safari/605.1.15",
        "browser",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
        "Safari/537.36",
        "browser",
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "browser"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "browser"),
    (
        "Mozilla/5.0 (Linux; U; Android 13; zh-cn; PHB110 Build/TP1A.220905.001) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/14.3 Mobile Safari/537.36",
        "browser",
    ),
    (
        "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
        "browser",  # Windows Phone's Edge says Android too, as it really did
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
        "Safari/537.36",
        "browser",
    ),
]


@pytest.mark.parametrize(("ua", "expected"), CASES)
def test_classify_user_agent_table(ua: str, expected: str) -> None:
    assert classify_user_agent(ua) == expected


def test_the_table_covers_every_class() -> None:
    assert {expected for _, expected in CASES} == set(UA_CLASSES)


def test_none_is_missing() -> None:
    assert classify_user_agent(None) == "missing"


@pytest.mark.parametrize("ua", SCRIPT_UAS)
def test_the_simulators_script_uas_are_scripts_or_headless(ua: str) -> None:
    assert classify_user_agent(ua) in ("script", "headless")


def test_genuine_phones_over_many_seeds_are_never_bots() -> None:
    seen: Counter[str] = Counter()
    for seed in range(300):
        rng = random.Random(f"ua-genuine:{seed}")
        for _ in range(20):
            seen[classify_user_agent(mobile_user_agent(rng))] += 1
    assert set(seen) <= {"app", "browser"}, seen
    assert seen["app"] > 3 * seen["browser"] > 0  # mostly in-app WebViews, some plain browsers


def test_the_simulators_stitched_uas_are_mostly_inconsistent() -> None:
    rng = random.Random("ua-inconsistent")
    classes = Counter(classify_user_agent(inconsistent_user_agent(rng)) for _ in range(2000))
    assert classes["inconsistent"] / 2000 >= 0.95, classes


def test_a_fresh_ua_is_classified_in_microseconds() -> None:
    rng = random.Random("ua-speed")
    uas = [mobile_user_agent(rng) + f" r{i}" for i in range(2000)]  # all distinct: no cache hits
    started = time.perf_counter()
    for ua in uas:
        classify_user_agent(ua)
    per_call_us = (time.perf_counter() - started) / len(uas) * 1e6
    assert per_call_us < 100, per_call_us  # ~10 µs on the CI box; generous for a loaded machine
