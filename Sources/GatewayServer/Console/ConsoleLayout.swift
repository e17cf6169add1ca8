import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird

/// The console's page frame, its stylesheet, and small pieces shared by the pages.
enum ConsoleLayout {
    static func page(title: String, csrf: String?, signedIn: Bool, current: String = "", body: HTML) -> HTML {
        let links: [(String, String)] = [
            ("/console", "Overview"), ("/console/tenants", "Tenants"), ("/console/deliveries", "Deliveries"),
            ("/console/api-keys", "API keys"), ("/console/audit", "Audit log"),
        ]
        let nav: HTML = signedIn
            ? """
            <nav><ul>\(links.map { path, name in HTML("<li><a href=\"\(path)\"\(path == current ? HTML(raw: " aria-current=\"page\"") : "")>\(name)</a></li>") })</ul>\(csrf.map { token in HTML("<form method=\"post\" action=\"/console/sign-out\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(token)\"><button type=\"submit\" class=\"link\">Sign out</button></form>") } ?? "")</nav>
            """
            : ""
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">
            <title>\(title) · Onboarding gateway</title>
            <link rel="stylesheet" href="/console/assets/console.css">
            </head>
            <body>
            <header><a class="brand" href="/console">Onboarding gateway</a>\(nav)</header>
            <main>
            \(body)
            </main>
            </body>
            </html>
            """
    }

    static func response(_ page: HTML, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: page.text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    static func csrfField(_ token: String) -> HTML { "<input type=\"hidden\" name=\"csrf\" value=\"\(token)\">" }

    /// A one-button form posting to `action`, with a confirmation box the server checks too.
    static func actionForm(_ action: String, label: String, csrf: String, confirm: String? = nil, danger: Bool = false) -> HTML {
        let box: HTML = confirm.map { text in
            HTML("<label class=\"confirm\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> \(text)</label>")
        } ?? ""
        return """
            <form method="post" action="\(action)" class="action">\(csrfField(csrf))\(box)<button type="submit"\(danger ? HTML(raw: " class=\"danger\"") : "")>\(label)</button></form>
            """
    }

    static func badge(_ state: String) -> HTML { "<span class=\"badge \(state)\">\(state.replacingOccurrences(of: "_", with: " "))</span>" }

    static func notice(_ text: String?, error: Bool = false) -> HTML {
        guard let text, !text.isEmpty else { return "" }
        return "<p class=\"notice\(error ? HTML(raw: " error") : "")\" role=\"status\">\(text)</p>"
    }

    /// A table that scrolls sideways on a narrow screen instead of breaking the page.
    static func table(_ head: [String], _ rows: [HTML], empty: String) -> HTML {
        guard !rows.isEmpty else { return "<p class=\"empty\">\(empty)</p>" }
        return """
            <div class="scroll"><table><thead><tr>\(head.map { HTML("<th scope=\"col\">\($0)</th>") })</tr></thead><tbody>\(rows)</tbody></table></div>
            """
    }

    static let stylesheet = """
        :root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #f6f7f9; --accent: #2250c8; --bad: #b42318; --good: #107a3a; --warn: #9a5b00; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .75rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
        .brand { font-weight: 650; color: var(--fg); text-decoration: none; }
        nav { display: flex; flex-wrap: wrap; align-items: center; gap: .25rem 1rem; }
        nav ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
        nav a { color: var(--muted); text-decoration: none; }
        nav a[aria-current="page"] { color: var(--accent); font-weight: 600; }
        main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
        h1 { font-size: 1.4rem; margin: .5rem 0 1rem; word-break: break-all; }
        h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
        a { color: var(--accent); }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: .75rem; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; }
        .card .big { font-size: 1.6rem; font-weight: 650; }
        .scroll { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
        td.wrap { white-space: normal; min-width: 14rem; }
        th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
        .badge { display: inline-block; padding: .05rem .45rem; border-radius: 999px; font-size: .8rem; background: #e7e9ee; }
        .badge.active, .badge.delivered, .badge.closed { background: #dcf3e5; color: var(--good); }
        .badge.failed, .badge.open, .badge.suspended { background: #fde4e1; color: var(--bad); }
        .badge.action_required, .badge.pending, .badge.half_open { background: #fff1d6; color: var(--warn); }
        .notice { background: #e8effd; border: 1px solid #c5d4f7; padding: .6rem .8rem; border-radius: 6px; }
        .notice.error { background: #fde4e1; border-color: #f5b8b0; }
        .empty { color: var(--muted); }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; }
        dl.facts dt { color: var(--muted); }
        dl.facts dd { margin: 0; word-break: break-word; }
        form.search { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: 1rem; }
        form.search label, form.stack label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
        form.stack { display: grid; gap: .6rem; max-width: 28rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1rem; }
        .actions { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-start; }
        form.action { display: flex; flex-direction: column; gap: .35rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .75rem; }
        form.inline { display: inline; }
        label.confirm, form.stack label.confirm { display: flex; flex-direction: row; align-items: center; gap: .4rem; font-size: .85rem; color: var(--muted); }
        label.typed { display: flex; flex-direction: column; gap: .3rem; font-size: .85rem; color: var(--muted); }
        fieldset { border: 1px solid var(--line); border-radius: 4px; display: grid; gap: .3rem; }
        input[type=text], input[type=password], input[type=search], input[type=datetime-local], select { font: inherit; padding: .35rem .5rem; border: 1px solid #b9bfcb; border-radius: 4px; min-width: 10rem; max-width: 100%; }
        input[type=checkbox] { margin: 0; }
        input.copy { width: 100%; font-family: ui-monospace, monospace; }
        button { font: inherit; padding: .35rem .9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
        button.danger { background: var(--bad); border-color: var(--bad); }
        button.link { background: none; border: none; color: var(--muted); padding: 0; text-decoration: underline; }
        code, .mono { font-family: ui-monospace, monospace; font-size: .9em; }
        .muted { color: var(--muted); }
        .pager { margin-top: .75rem; }
        @media (max-width: 40rem) { main { padding: .6rem; } h1 { font-size: 1.2rem; } }
        """
}
