"""The one CSV helper: result Structs that are tables become ``text/csv``.

Controllers return result Structs; ``StatsResponse`` (their ``response_class``)
encodes them as JSON, or as CSV when the client asks with ``Accept: text/csv``
or ``?format=csv``. ``TABLES`` says which rows of which result form the table;
a result without an entry answers 406 for CSV.

Spreadsheets execute cells that start with ``=``, ``+``, ``-`` or ``@``; user
text (names, links, words) in such a cell is prefixed with a quote so that an
export never runs a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_406_NOT_ACCEPTABLE

from tgstats.db.chat_settings import ChatSettings
from tgstats.stats import results as r

__all__ = [
    "TABLES",
    "FormatParam",
    "StatsResponse",
    "register_table",
    "rows_to_csv",
    "wants_csv",
]

#: The ``format`` query parameter, for the OpenAPI docs (``StatsResponse`` reads it).
FormatParam = Annotated[
    str | None,
    QueryParameter(name="format", description="json (default) or csv; or send Accept: text/csv"),
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return f"'{value}" if value.startswith(_FORMULA_START) else value
    # Nested values (lists of counts, periods) stay readable as compact JSON.
    return _cell(msgspec.json.encode(value).decode())


def rows_to_csv(rows: Sequence[Any], columns: Sequence[str] | None = None) -> str:
    """CSV text with a header row; ``rows`` are Structs (or dicts) of one shape."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if columns is None:
        first = rows[0] if rows else None
        if first is None:
            columns = []
        elif isinstance(first, dict):
            columns = list(first)
        else:
            columns = list(first.__struct_fields__)
    writer.writerow(columns)
    for row in rows:
        get = row.get if isinstance(row, dict) else (lambda name, _row=row: getattr(_row, name))
        writer.writerow([_cell(get(name)) for name in columns])
    return out.getvalue()


def _summary_rows(result: r.Summary) -> list[dict[str, Any]]:
    rows = []
    for name in result.__struct_fields__:
        value = getattr(result, name)
        if isinstance(value, r.MetricDelta):
            rows.append({"metric": name, **msgspec.structs.asdict(value)})
    return rows


def _link_rows(result: r.LinkStats) -> list[dict[str, Any]]:
    return [{"kind": "url", **msgspec.structs.asdict(t)} for t in result.urls] + [
        {"kind": "domain", **msgspec.structs.asdict(t)} for t in result.domains
    ]


def _reaction_rows(result: r.ReactionStats) -> list[dict[str, Any]]:
    return [
        {
            "msg_id": m.msg_id,
            "user_id": m.user_id,
            "display_name": m.display_name,
            "date": m.date,
            "reactions": m.reactions,
            "top_reactions": " ".join(f"{t.term}:{t.count}" for t in m.top_reactions),
            "link": m.link,
        }
        for m in result.top_messages
    ]


def _member_flow_rows(result: r.MemberFlow) -> list[dict[str, Any]]:
    """One table of every count: ``section`` says which part each row is from."""
    rows: list[dict[str, Any]] = [
        {"section": "source", "key": s.source, "user_id": None, "count": s.joins}
        for s in result.sources
    ]
    rows += [
        {"section": "invite_link", "key": link.label, "user_id": None, "count": link.joins}
        for link in result.invite_links
    ]
    rows += [
        {"section": "inviter", "key": i.display_name, "user_id": i.user_id, "count": i.joins}
        for i in result.top_inviters
    ]
    rows += [
        {"section": "leave", "key": kind, "user_id": None, "count": count}
        for kind, count in msgspec.structs.asdict(result.leave_kinds).items()
    ]
    return rows


def _cohort_rows(result: r.CohortStats) -> list[dict[str, Any]]:
    unit = result.granularity
    rows = []
    for cohort in result.cohorts:
        row: dict[str, Any] = {
            "start": cohort.start,
            "end": cohort.end,
            "newcomers": cohort.newcomers,
            "posted": cohort.posted,
            "posted_pct": cohort.posted_pct,
        }
        for cell in cohort.cells:
            row[f"{unit}_{cell.offset}"] = cell.active
            row[f"{unit}_{cell.offset}_pct"] = cell.active_pct
        rows.append(row)
    return rows


def _response_rows(result: r.ResponseTimes) -> list[dict[str, Any]]:
    """The two summaries, one row each (``kind``), then the top responders."""
    rows: list[dict[str, Any]] = [
        {"kind": kind, **msgspec.structs.asdict(getattr(result, kind))}
        for kind in ("questions", "newcomers")
    ]
    rows += [
        {"kind": "responder", "user_id": row.user_id, "display_name": row.display_name,
         "questions_answered": row.questions, "newcomers_answered": row.newcomers,
         "answered": row.total}
        for row in result.top_responders
    ]  # fmt: skip
    columns = [*rows[0], "user_id", "display_name", "questions_answered", "newcomers_answered"]
    return [{name: row.get(name) for name in columns} for row in rows]


#: Result type -> (name for the file, its table rows).
TABLES: dict[type, tuple[str, Callable[[Any], Sequence[Any]]]] = {
    r.ChatList: ("chats", lambda x: x.chats),
    r.Summary: ("summary", _summary_rows),
    r.Timeseries: ("timeseries", lambda x: x.points),
    r.Heatmap: ("heatmap", lambda x: x.cells),
    r.UserLeaderboard: ("users", lambda x: x.rows),
    r.MediaBreakdown: ("media", lambda x: x.types),
    r.TermRanking: ("terms", lambda x: x.terms),
    r.LinkStats: ("links", _link_rows),
    r.ReactionStats: ("reactions", _reaction_rows),
    r.InteractionStats: ("interactions", lambda x: x.pairs),
    r.MemberStats: ("members", lambda x: x.days),
    r.TopicStats: ("topics", lambda x: x.topics),
    r.MemberFlow: ("member_flow", _member_flow_rows),
    r.CohortStats: ("cohorts", _cohort_rows),
    r.ResponseTimes: ("response_times", _response_rows),
    r.UserProfile: ("user", lambda x: x.daily),
    ChatSettings: ("settings", lambda x: [x]),
}


def register_table(result_type: type, name: str, rows: Callable[[Any], Sequence[Any]]) -> None:
    """Let a plugin's result be served as CSV: ``rows(result)`` gives the table's rows."""
    TABLES[result_type] = (name, rows)


def wants_csv(request: Request[Any, Any, Any]) -> bool:
    """``?format=csv`` (or ``json``) decides; else an Accept header preferring text/csv."""
    raw: Any = request.query_params.get("format")
    if raw is not None:
        requested = str(raw).strip().lower()
        if requested not in ("csv", "json"):
            raise ValidationException(
                "invalid parameter: format",
                extra=[{"key": "format", "message": "expected csv or json", "source": "query"}],
            )
        return requested == "csv"
    accept = str(request.headers.get("accept", ""))
    return "text/csv" in accept and "application/json" not in accept.split("text/csv")[0]


def _table_of(content: Any) -> tuple[str, Iterable[Any]]:
    entry = TABLES.get(type(content))
    if entry is None:
        raise HTTPException(
            status_code=HTTP_406_NOT_ACCEPTABLE, detail="this result is not a table; ask for JSON"
        )
    name, rows = entry
    return name, rows(content)


class StatsResponse(Response[Any]):
    """JSON (msgspec) by default; CSV of the result's table when the client asks for it."""

    def to_asgi_response(self, app: Any, request: Request[Any, Any, Any], **kwargs: Any) -> Any:
        if (self.status_code or 200) < 300 and wants_csv(request):
            name, rows = _table_of(self.content)
            chat = request.path_params.get("chat_id")
            filename = f"tgstats-{chat}-{name}.csv" if chat is not None else f"tgstats-{name}.csv"
            csv_response = Response(
                content=rows_to_csv(list(rows)),
                media_type="text/csv",  # Litestar adds "; charset=utf-8"
                status_code=self.status_code,
                headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            )
            return csv_response.to_asgi_response(app, request, **kwargs)
        return super().to_asgi_response(app, request, **kwargs)
