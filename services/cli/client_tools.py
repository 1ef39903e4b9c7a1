"""The client tools `agent-runtime chat` answers itself: read a file, list a directory and
create a file, all under the directory the chat was started in (docs/tools.md).

A path that leaves that directory (`..`, an absolute path elsewhere, a symlink pointing out) is
refused with an error result, as is anything but these tools: the model reads the refusal and
the turn goes on. Results are cut to the contract's limit (MAX_TOOL_RESULT_LENGTH).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from contracts.limits import MAX_TOOL_RESULT_LENGTH

MAX_LISTED_ENTRIES: Final = 500
_CUT_NOTE: Final = "\n[… cut: the result is limited to {limit} characters]"


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str
    is_error: bool = False


class ClientTools:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._tools: Mapping[str, Callable[[dict[str, Any]], ToolResult]] = {
            "read_file": self._read_file,
            "list_directory": self._list_directory,
            "write_file": self._write_file,
        }

    def names(self) -> list[str]:
        return sorted(self._tools)

    def run(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        handler = self._tools.get(tool)
        if handler is None:
            return ToolResult(
                f"this client cannot run {tool!r} (it runs: {', '.join(self.names())})", True
            )
        try:
            return _bounded(handler(arguments))
        except _Refused as refused:
            return ToolResult(str(refused), True)
        except OSError as error:
            return ToolResult(f"{tool} failed: {error.strerror or error}", True)

    def _read_file(self, arguments: dict[str, Any]) -> ToolResult:
        path = self._inside(arguments)
        if not path.is_file():
            raise _Refused(f"no such file: {self._shown(path)}")
        data = path.read_bytes()
        try:
            return ToolResult(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise _Refused(f"{self._shown(path)} is not a UTF-8 text file") from None

    def _list_directory(self, arguments: dict[str, Any]) -> ToolResult:
        path = self._inside(arguments, default=".")
        if not path.is_dir():
            raise _Refused(f"no such directory: {self._shown(path)}")
        entries = sorted(path.iterdir(), key=lambda entry: entry.name)
        lines = [f"{e.name}/" if e.is_dir() else e.name for e in entries[:MAX_LISTED_ENTRIES]]
        if len(entries) > MAX_LISTED_ENTRIES:
            lines.append(f"[… {len(entries) - MAX_LISTED_ENTRIES} more entries]")
        return ToolResult("\n".join(lines) if lines else "(empty directory)")

    def _write_file(self, arguments: dict[str, Any]) -> ToolResult:
        path = self._inside(arguments)
        content = arguments.get("content")
        if not isinstance(content, str):
            raise _Refused("write_file needs a string `content`")
        if path.exists():
            raise _Refused(f"{self._shown(path)} exists; write_file creates new files only")
        if not path.parent.is_dir():
            raise _Refused(f"no such directory: {self._shown(path.parent)}")
        try:  # before the file exists: a content that cannot be written leaves no empty file
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("write_file needs UTF-8 text (`content` has a lone surrogate)") from None
        with path.open("xb") as file:
            file.write(data)
        return ToolResult(f"created {self._shown(path)} ({len(content)} characters)")

    def _inside(self, arguments: dict[str, Any], default: str | None = None) -> Path:
        raw = arguments.get("path", default)
        if not isinstance(raw, str) or not raw:
            raise _Refused("a string `path` is required")
        if "\0" in raw:  # the OS takes no NUL in a path (ValueError, not OSError)
            raise _Refused("a `path` cannot contain a NUL character")
        path = (self.root / raw).resolve()
        if path != self.root and self.root not in path.parents:
            raise _Refused(f"refused: {raw!r} is outside the working directory")
        return path

    def _shown(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path != self.root else "."


class _Refused(Exception):
    """A call this client will not run; its text is the error result."""


def _bounded(result: ToolResult) -> ToolResult:
    if len(result.content) <= MAX_TOOL_RESULT_LENGTH:
        return result
    note = _CUT_NOTE.format(limit=MAX_TOOL_RESULT_LENGTH)
    return ToolResult(result.content[: MAX_TOOL_RESULT_LENGTH - len(note)] + note, result.is_error)
