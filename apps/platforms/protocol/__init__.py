"""The sales platforms' wire protocols (Douyin 抖店, Kuaishou 快手小店, Taobao TOP): signing,
push verification/decryption and parsing, canonical order mapping, and httpx API clients.

Pure Python: importable without Django settings or a database. ``base`` holds the shared types,
errors and mapping tables; one module per platform holds its recipes and client.
"""
