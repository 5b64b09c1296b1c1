"""What kind of client sent an order, from its User-Agent: one word the rules and the model read.

``classify_user_agent(ua)`` returns one of:

- ``"missing"``: no user agent at all (an empty or blank header).
- ``"headless"``: a browser driven by a program: ``HeadlessChrome``, ``Headless`` anywhere,
  PhantomJS, SlimerJS, Puppeteer, Playwright, Selenium / WebDriver markers.
- ``"script"``: an HTTP library or tool announcing itself (python-requests, aiohttp, httpx,
  okhttp, Go-http-client, curl, wget, axios, node-fetch, undici, Java, Apache-HttpClient,
  libwww-perl, Postman, Scrapy...), or a string that names no platform at all (a bare
  ``name/version`` is a library; every real browser and app names its OS).
- ``"inconsistent"``: a user agent whose parts cannot all be true, as rotating-proxy bots send
  when they stitch UAs together: an iPhone with Android, or with a Blink engine (iOS allows only
  WebKit, so a real iPhone says ``AppleWebKit/605.1.15`` and Chrome there says ``CriOS``), an
  Android device named iPhone, a desktop OS with a phone's OS, a mobile app's WebView (Douyin
  ``aweme``, Kuaishou ``Kwai``) on Windows or macOS, WeChat on a desktop OS without its desktop
  client's marker.
- ``"app"``: a mobile app: an in-app WebView (Douyin, Kuaishou, WeChat, Alipay, Taobao, Weibo,
  QQ, Xiaohongshu, Toutiao, DingTalk, the Android ``; wv)`` WebView) or a native client
  (``Dalvik/``, ``CFNetwork``, an app name with a platform in parentheses).
- ``"browser"``: anything else that looks like a browser (desktop or mobile).

Checks run in that order, so a headless Chrome is ``headless`` even when it also contradicts
itself. This is a heuristic over strings a client chooses: a careful bot copies a real app UA
and is ``app`` here (the graph features catch it, not this). The point is the cheap tell.

Cost: the hot path calls this on every order. Compiled regexes, and an LRU cache: a show's
buyers send a few hundred distinct UAs, so nearly every call is a dictionary hit (~0.3 µs);
a miss is ~20 µs (one core, CPython 3.11, a 300-character app UA).
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["UA_CLASSES", "classify_user_agent", "names_a_library"]

UA_CLASSES = ("missing", "script", "headless", "inconsistent", "app", "browser")

# Longer than any real UA by far; a longer header is truncated before matching (the storefront
# already keeps 512 characters).
_MAX_LEN = 1024

# Matching is on the lower-cased string, by substring where a marker is a plain word: Python's
# regex engine tries every alternative at every position, which costs ~25 µs per pattern on a
# 300-character UA; `in` is a C loop.
_HEADLESS = ("headless", "phantomjs", "slimerjs", "puppeteer", "playwright", "selenium", "webdriver")

# HTTP libraries and command-line tools, where they start a token (most lead the string; some
# follow "Python/3.x " or sit in parentheses).
_SCRIPT = re.compile(
    r"(?:^|[\s(;])(?:"
    r"python-requests|python-urllib|python-httpx|httpx/|aiohttp|urllib3|pycurl|scrapy|"
    r"okhttp|go-http-client|fasthttp|curl/|libcurl|wget|axios|node-fetch|undici|got |"
    r"java/|apache-httpclient|jakarta commons|libwww-perl|lwp::|mechanize|"
    r"postmanruntime|insomnia|httpie|guzzlehttp|php/|ruby|faraday|rest-client|"
    r"dart/|reqwest|hyper/|winhttp|powershell|wininet|httpclient|http_request|"
    r"[a-z]*bot/|spider|crawler"
    r")"
)
# Platforms. A UA may legitimately name one of these families; two at once is a contradiction.
_IOS = re.compile(r"iphone|ipad|ipod|\bios\b|cpu (?:iphone )?os \d")
_WINDOWS = ("windows nt", "win64", "wow64", "win32")
_DESKTOP_LINUX = ("x11", "ubuntu", "fedora", "cros")

# Engines. Blink (Chrome and every Android WebView) is AppleWebKit/537.36; iOS is WebKit 60x.
_BLINK = "applewebkit/537.36"
_WEBKIT_IOS = re.compile(r"applewebkit/60\d")
_CHROME = re.compile(r"\bchrome/\d")  # desktop/Android Chrome (iOS Chrome says CriOS)
_MOBILE_TOKEN = re.compile(r"\bmobile/\w")
_ANDROID_WV = re.compile(r";\s*wv\b")  # the Android WebView marker

# Mobile apps. Douyin (aweme, BytedanceWebview) and Kuaishou (Kwai) have no desktop WebView;
# WeChat has one, which names itself (WindowsWechat, MacWechat, WMPF).
_PHONE_ONLY_APP = ("aweme", "bytedancewebview", "kwai/", "ksnebula", "kuaishou")
_WECHAT_DESKTOP = ("windowswechat", "macwechat", "wmpf", "wxwork")
_APP = (
    "aweme", "bytedancewebview", "kwai/", "ksnebula", "micromessenger", "alipayclient", "aliapp(", "weibo",
    " qq/", "newsarticle", "dingtalk", "discover/", "xiaohongshu", "pinduoduo", "dalvik/", "cfnetwork/",
)  # fmt: skip
_NATIVE_APP = re.compile(r"^com\.[a-z0-9_.]+/")  # Android package name, as native HTTP stacks send
_BROWSERISH = re.compile(r"(?:mozilla|opera)/\d")
_PLATFORM = re.compile(r"\([^)]*(?:linux|android|iphone|ipad|ios|windows|macintosh|mac os|x11|cros)")


def _any(markers: tuple[str, ...], text: str) -> bool:
    return any(m in text for m in markers)


def _inconsistent(ua: str) -> bool:
    """``ua`` is lower case."""
    ios = bool(_IOS.search(ua))
    windows_phone = "windows phone" in ua  # its Edge says Android too, legitimately
    android = ("android" in ua or "dalvik" in ua) and not windows_phone
    windows = _any(_WINDOWS, ua) and not windows_phone
    mac = not ios and ("macintosh" in ua or "mac os x" in ua)  # iOS says "like Mac OS X"
    desktop_linux = not android and _any(_DESKTOP_LINUX, ua)
    if ios + android + windows + mac + desktop_linux > 1:
        return True  # two operating systems at once: iPhone + Android, Windows + iOS...
    if ios and (_BLINK in ua or _CHROME.search(ua) or _ANDROID_WV.search(ua)):
        return True  # iOS runs WebKit only; Chrome there is CriOS over WebKit 605
    if android and _WEBKIT_IOS.search(ua):
        return True  # Apple's WebKit build on Android
    # An iPad's WebView may ask for the desktop site ("Macintosh") but keeps its "Mobile/" token.
    desktop = windows or (mac and not _MOBILE_TOKEN.search(ua)) or desktop_linux
    if desktop and _any(_PHONE_ONLY_APP, ua):
        return True  # Douyin / Kuaishou WebViews exist only in the phone apps
    if desktop and "micromessenger" in ua and not _any(_WECHAT_DESKTOP, ua):
        return True  # desktop WeChat names its client
    return False


@lru_cache(maxsize=4096)
def _classify(ua: str) -> str:
    if not ua:
        return "missing"
    low = ua.lower()
    if _any(_HEADLESS, low):
        return "headless"
    if _SCRIPT.search(low):
        return "script"
    browserish = bool(_BROWSERISH.match(low))
    app = _any(_APP, low) or bool(_NATIVE_APP.match(low))
    if not browserish and not app and not _PLATFORM.search(low):
        return "script"  # a bare name/version: no browser and no app names no platform
    if _inconsistent(low):
        return "inconsistent"
    if app or _ANDROID_WV.search(low) or not browserish:
        return "app"
    return "browser"


def classify_user_agent(ua: str | None) -> str:
    """One of ``UA_CLASSES`` for a User-Agent header (see the module docstring)."""
    if ua is None:
        return "missing"
    return _classify(ua.strip()[:_MAX_LEN])


@lru_cache(maxsize=4096)
def names_a_library(ua: str | None) -> bool:
    """Whether the user agent names an HTTP library or tool (python-requests, curl, okhttp...): the
    ``script`` class without the bare ``name/version`` strings, which a merchant's own app or a
    streamer tool may send. The blocking rule reads this; the model reads the class."""
    return bool(ua) and not _any(_HEADLESS, ua.lower()) and bool(_SCRIPT.search(ua.lower()))  # type: ignore[union-attr]
