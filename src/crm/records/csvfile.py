"""The CSV files of uploads and exports: records read strictly (a file that is not valid CSV
anywhere is refused, naming the line where it breaks), and cells written so that a
spreadsheet never runs one as a formula, in a form the upload reads back unchanged."""

import csv
import re
from collections.abc import Iterator
from typing import IO

from crm.customfields.service import NUMBER_PATTERN
from crm.errors import ApiError

# A record as RFC 4180 has it: cells either quoted (a quote inside written twice) or without
# any quote, separated by commas. Possessive, so that checking a long record never
# backtracks; its match stops where the record stops being valid.
QUOTED = r'"(?:[^"]|"")*+"'
PLAIN = r'[^",\r\n]*+'
VALID_RECORD = re.compile(rf"(?:(?:{QUOTED}|{PLAIN}),)*+(?:{QUOTED}|{PLAIN})")
LINE_ENDS = "\r\n"
LINE_BREAK = re.compile(r"\r\n|\r|\n")

UNCLOSED = "unexpected end of data"
TOO_LONG = "field larger than field limit"


def not_csv(reason: str) -> ApiError:
    return ApiError(400, {"file": f"The file is not valid CSV: {reason}."})


def read_records(stream: IO[str]) -> Iterator[list[str]]:
    """The file's records, by Python's csv reader in strict mode: a quote never closed, or
    text after a closing quote, is a 400 for the whole file. The reader takes a quote inside
    a cell that does not start with one as text; that is refused too (VALID_RECORD), as it
    means that the file's quoting went wrong. Bytes that are not UTF-8 are a 400 as well."""
    lines: list[str] = []  # the physical lines of the record being read

    def recorded() -> Iterator[str]:
        for line in stream:
            lines.append(line)
            yield line

    reader = csv.reader(recorded(), strict=True)
    before = 0  # physical lines before the record being read
    try:
        for record in reader:
            raw = lines[0] if len(lines) == 1 else "".join(lines)
            if '"' in raw:
                check_quotes(raw, before)
            before += len(lines)
            lines.clear()
            yield record
    except UnicodeDecodeError:
        raise ApiError(400, {"file": "The file is not UTF-8 text."}) from None
    except csv.Error as exc:
        start = before + 1
        if str(exc) == UNCLOSED:
            raise not_csv(f"the quote opened on line {start} is never closed") from None
        if str(exc).startswith(TOO_LONG):
            limit = csv.field_size_limit()
            reason = f"line {start}: a cell of more than {limit:,} characters (a quote left open?)"
            raise not_csv(reason) from None
        if "expected after" in str(exc):
            reason = (
                f"line {reader.line_num}: a quoted cell must end at its closing quote"
                ' (a quote inside a quoted cell is written twice: "")'
            )
            raise not_csv(reason) from None
        raise not_csv(f"line {reader.line_num}: {exc}") from None


def check_quotes(raw: str, before: int) -> None:
    """A record that the strict reader read (its quoted cells are sound) holds no quote in
    a cell that does not start with one."""
    body = raw.rstrip(LINE_ENDS)
    valid = VALID_RECORD.match(body)
    end = valid.end() if valid is not None else 0
    if end == len(body):
        return
    line = before + 1 + len(LINE_BREAK.findall(body, 0, end))
    reason = (
        f"line {line}: a quote inside a cell that does not start with one"
        ' (quote the whole cell, and write the quote twice: "")'
    )
    raise not_csv(reason)


# --- Formulas ------------------------------------------------------------------------------

# What makes a spreadsheet read a cell as a formula (OWASP's list), and the apostrophe that
# makes it read the cell as text instead.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_PREFIX = "'"
PREFIXED_STARTS = (*FORMULA_STARTS, TEXT_PREFIX)


def neutralised(cell: str) -> str:
    """A cell as an export writes it: one that a spreadsheet would run as a formula gains a
    leading apostrophe, as does one that begins with an apostrophe itself (so that the
    upload, which takes the apostrophe away, gives it back whole). A plain negative number
    (`-5`, `-2.5`) is left a number: no spreadsheet runs it."""
    if cell.startswith(PREFIXED_STARTS) and not (cell[0] == "-" and NUMBER_PATTERN.fullmatch(cell)):
        return TEXT_PREFIX + cell
    return cell


def typed_back(cell: str) -> str:
    """A cell as the upload reads it: an apostrophe before a formula's first character or
    before another apostrophe is the spreadsheet's mark of text (typing `'=1+1` in one
    gives the text `=1+1`), taken away; any other apostrophe is the cell's own."""
    if cell[:1] == TEXT_PREFIX and cell[1:2] in PREFIXED_STARTS:
        return cell[1:]
    return cell
