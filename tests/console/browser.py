"""A browser tab on the console, and what it records: every dialog (none may open), every
console error (a CSP violation is one) and every uncaught page error."""

from __future__ import annotations

from dataclasses import dataclass, field

from playwright.async_api import ConsoleMessage, Dialog, Error, Page, expect

TIMEOUT_MS = 30_000  # a bound for the page to show something, not a speed claim
# At start-up without a key the console asks GET /v1/whoami whether a portal session cookie
# is there; the 401 answering "no" is logged by the browser as a failed load.
EXPECTED = ("the server responded with a status of 401",)


@dataclass
class Tab:
    page: Page
    base_url: str
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        self.page.on("dialog", self._dialog)
        self.page.on("console", self._console)
        self.page.on("pageerror", self._page_error)

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _page_error(self, error: Error) -> None:
        self.page_errors.append(str(error))

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]

    def assert_clean(self, *, allowed_console: tuple[str, ...] = ()) -> None:
        """No dialog opened, no CSP violation, no uncaught error."""
        assert self.dialogs == []
        assert self.csp_violations == []
        assert self.page_errors == []
        allowed = EXPECTED + allowed_console
        unexpected = [m for m in self.console_errors if not any(a in m for a in allowed)]
        assert unexpected == []

    async def sign_in(self, key: str, hash_route: str = "") -> None:
        await self.page.goto(f"/console/{hash_route}")
        await self.page.get_by_label("API key").fill(key)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    async def open(self, hash_route: str) -> None:
        """Follow a console link (as a user clicking one would)."""
        await self.page.evaluate("route => { window.location.hash = route; }", hash_route)

    async def key_leaks(self, key: str) -> list[str]:
        """Where the key shows outside sessionStorage: the URL, document.cookie, the page."""
        leaks = []
        if key in self.page.url:
            leaks.append("url")
        if key in await self.page.evaluate("document.cookie"):
            leaks.append("cookie")
        if key in await self.page.content():
            leaks.append("document")
        return leaks
