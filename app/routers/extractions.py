"""`POST /extractions`: a review's text to a draft bundle and a report, as `statsapi extract`
makes them; it writes nothing. The text is read and matched in the thread pool (it is CPU
work that grows with the text), learning from the database's observations."""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, WithJsonSchema

from app import extract
from app.auth import AdminKey
from app.blocking import run_read
from app.db import EngineDep
from app.errors import InvalidParameterError
from app.params import from_query
from app.rendering import JSONResponse
from app.routers.docs import COMPONENT_REF, upload_errors
from app.schemas import ExtractionQuery

router = APIRouter(prefix="/extractions", tags=["extractions"])

Params = Annotated[ExtractionQuery, from_query(ExtractionQuery)]


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


@router.post(
    "",
    response_model=ExtractionResult,
    openapi_extra={"requestBody": TEXT_BODY},
    responses={
        **upload_errors(
            "A parameter is invalid, the body is not in its charset, or the text gives no "
            "title or publication date and the query neither (`errors` names it)."
        ),
    },
)
async def extract_review(
    request: Request, _key: AdminKey, params: Params, engine: EngineDep
) -> JSONResponse:
    """Draft a bundle from a review's text (admin); nothing is written.

    Each figure tied to a known indicator (learned from the earlier observations' quotes)
    becomes an observation of the draft, quoting its clause; every other statistic is in the
    report. Import the draft with `POST /imports` once checked."""
    text = extract.decode_upload(await request.body(), request.headers.get("content-type", ""))
    options = extract.Options(**params.model_dump())
    try:
        answer = await run_read(engine, extract.extract_from_database, text, options, heavy=True)
    except extract.ExtractError as error:
        raise InvalidParameterError.for_field("query", error.field, str(error)) from None
    return JSONResponse(answer)
