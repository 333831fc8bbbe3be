"""`POST /extractions`: a review's text to a draft bundle and a report, as `statsapi extract`
makes them; it writes nothing. The text is read and matched in the thread pool (it is CPU
work that grows with the text), learning from the database's observations."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import Connection

from app import extract
from app.auth import require
from app.blocking import run_read
from app.bounds import CODE_PATTERN, MAX_YEAR, MIN_YEAR
from app.db import EngineDep
from app.errors import InvalidParameterError, UnsupportedMediaTypeError
from app.keys import ApiKeyInfo, Scope
from app.rendering import JSONResponse
from app.routers.docs import COMPONENT_REF, WRITE_ERRORS, problem

router = APIRouter(prefix="/extractions", tags=["extractions"])

AdminKey = Annotated[ApiKeyInfo, Depends(require(Scope.admin))]
# The charsets a review arrives in; anything else is 415. Without one, UTF-8.
CHARSETS = {"utf-8": "utf-8-sig", "utf8": "utf-8-sig", "gbk": "gb18030", "gb2312": "gb18030"}
CHARSETS["gb18030"] = "gb18030"


class ExtractionResult(BaseModel):
    """The draft bundle (what `POST /imports` and `statsapi import` read) and the report."""

    draft: Annotated[
        dict[str, Any], WithJsonSchema({"allOf": [{"$ref": COMPONENT_REF.format(model="Bundle")}]})
    ] = Field(
        description="A bundle: the source (its text inline) and an observation for every "
        "figure tied to a known indicator. Check it, then import it."
    )
    report: list[extract.ReportItem] = Field(
        description="Every other statistic of the text: uncertain matches (with the "
        "candidate and its score) and figures no indicator fits (with a proposed name and unit)."
    )


TEXT_BODY = {
    "required": True,
    "description": "The review's text: `text/plain`, UTF-8 (a byte-order mark is dropped) "
    "unless `charset=gbk` or `gb18030` says otherwise. Its first lines give the title and "
    "publication date when the query does not.",
    "content": {
        "text/plain": {
            "schema": {"type": "string", "format": "binary"},  # bytes: UTF-8 or GBK
            "example": "年度盘点 | 2024,常州退役军人工作这一年 |\n"
            "发布日期:2025-01-03 来源:局办公室 |\n全年开展退役士兵适应性培训652人次。",
        }
    },
}


def _decode(body: bytes, content_type: str) -> str:
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "text/plain":
        raise UnsupportedMediaTypeError(
            f"Content-Type {media_type.strip() or 'missing'}: send the text as text/plain."
        )
    charset = "utf-8"
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset not in CHARSETS:
        raise UnsupportedMediaTypeError(f"charset {charset}: send UTF-8 (or GBK).")
    try:
        return body.decode(CHARSETS[charset])
    except UnicodeDecodeError as error:
        raise InvalidParameterError.for_field(
            "body", "body", f"not {charset} (byte {error.start})"
        ) from None


def _extract(connection: Connection, text: str, options: extract.Options) -> dict[str, Any]:
    knowledge = extract.knowledge_from_database(connection)
    result = extract.extract(text, options, knowledge)
    return {"draft": result.draft, "report": [item.model_dump() for item in result.report]}


@router.post(
    "",
    response_model=ExtractionResult,
    openapi_extra={"requestBody": TEXT_BODY},
    responses={
        **{status: WRITE_ERRORS[status] for status in (400, 401, 403, 408, 413, 415, 429)},
        422: problem(
            "A parameter is invalid, the body is not in its charset, or the text gives no "
            "title or publication date and the query neither (`errors` names it)."
        ),
    },
)
async def extract_review(
    request: Request,
    _key: AdminKey,
    engine: EngineDep,
    year: Annotated[
        int,
        Query(ge=MIN_YEAR, le=MAX_YEAR, description="The year the review covers.", examples=[2024]),
    ],
    source_code: Annotated[
        str,
        Query(
            pattern=CODE_PATTERN,
            max_length=100,
            description="The new source's code.",
            examples=["cz-tyjrswj-2024-review"],
        ),
    ],
    published_on: Annotated[
        date | None, Query(description="Default: the text's 发布日期.", examples=["2025-01-03"])
    ] = None,
    title_zh: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=300,
            description="Default: the text's first line.",
            examples=["年度盘点 | 2024,常州退役军人工作这一年"],
        ),
    ] = None,
    url: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Where it is published.",
            examples=["https://tyjrswj.changzhou.gov.cn/"],
        ),
    ] = None,
    publisher_zh: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Default: the text's 主办单位 and 来源.",
            examples=["常州市退役军人事务局 局办公室"],
        ),
    ] = None,
) -> JSONResponse:
    """Draft a bundle from a review's text (admin); nothing is written.

    Each figure tied to a known indicator (learned from the earlier observations' quotes)
    becomes an observation of the draft, quoting its clause; every other statistic is in the
    report. Import the draft with `POST /imports` once checked."""
    text = _decode(await request.body(), request.headers.get("content-type", ""))
    options = extract.Options(
        year=year,
        source_code=source_code,
        published_on=published_on,
        title_zh=title_zh,
        url=url,
        publisher_zh=publisher_zh,
    )
    try:
        answer = await run_read(engine, _extract, text, options, heavy=True)
    except extract.ExtractError as error:
        raise InvalidParameterError.for_field("query", error.field, str(error)) from None
    return JSONResponse(answer)
