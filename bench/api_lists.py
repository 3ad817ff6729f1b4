"""API benchmark: server time and queries of the list endpoints at a year of evidence.

Builds the data of bench/pages.py (100 clusters, 1,000,000 evidence items, 250,000 on one
cluster) in a database of its own, then requests each list endpoint's first page and its
hundredth (reached by following next_cursor, as a client would) with a viewer's token, and
prints the median and p95 of 20 requests and the queries each made.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/api_lists.py [TOTAL] [BIG]
"""

from urllib.parse import urlencode

from django.test import Client  # noqa: E402
from pages import build, measure, run_at_scale  # importing it sets Django up

PAGES_DEEP = 100


def hundredth(client: Client, url: str, query: dict) -> str:
    """The URL of the hundredth page, by following the cursors."""
    cursor = None
    for _ in range(PAGES_DEEP - 1):
        answer = client.get(url, {**query, **({"cursor": cursor} if cursor else {})}).json()
        cursor = answer["next_cursor"]
        assert cursor, f"{url} has fewer than {PAGES_DEEP} pages"
    return f"{url}?{urlencode({**query, 'cursor': cursor})}"


def main(total: int, big: int) -> None:
    from api.tokens import token_create
    from scorecard.models import Check
    from scorecard.roles import role_assign

    data = build(total, big)
    user = role_assign(username="bench", role="viewer", create=True)[0]
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token_create(actor=user, name='bench')[1]}")
    cluster = data["big"].cluster_id
    check = Check.objects.filter(row__scorecard=data["big"], row__key="durability").first()
    evidence = f"/api/v1/clusters/{cluster}/evidence"
    lists = {
        "evidence, newest first": (evidence, {"limit": 50}),
        "evidence of one row": (evidence, {"limit": 50, "row": "durability"}),
        "evidence of one check": (evidence, {"limit": 50, "check": check.pk}),
        "evidence, status WARN (1 in 50)": (evidence, {"limit": 50, "status": "WARN"}),
        "evidence of a 30-day period": (evidence, {"limit": 50, "since": "2026-01-01", "until": "2026-01-31"}),
        "clusters (100), 1 per page": ("/api/v1/clusters", {"limit": 1}),
    }
    print(f"{'list':36} {'page':>5} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for name, (url, query) in lists.items():
        first = f"{url}?{urlencode(query)}"
        for page, target in ((1, first), (PAGES_DEEP, hundredth(client, url, query))):
            median, p95, queries = measure(client, target)
            print(f"{name:36} {page:5d} {median:10.1f} {p95:8.1f} {queries:8d}")
    for name, url in {"scorecard": f"/api/v1/clusters/{cluster}/scorecard",
                      "readiness": f"/api/v1/clusters/{cluster}/readiness"}.items():  # fmt: skip
        median, p95, queries = measure(client, url)
        print(f"{name:36} {'-':>5} {median:10.1f} {p95:8.1f} {queries:8d}")


if __name__ == "__main__":
    run_at_scale(main)
