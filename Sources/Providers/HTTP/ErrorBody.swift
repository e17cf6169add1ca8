import Foundation

/// Reads the many shapes of provider error bodies seen in the wild: `message`, `error`, `errors[0].message`,
/// `errors[0]` as a string, `errors[0].title`, Rails-style `errors: {field: [..]}`, or an HTML page.
/// What it reads is for logs and for mapping fields; it is never echoed to clients as is.
struct ErrorBody {
    struct Item {
        var field: String?
        var message: String
    }

    var items: [Item] = []
    var isHTML = false

    init(_ response: ProviderResponse) {
        if response.isHTML {
            isHTML = true
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] else { return }
        if let message = object["message"] as? String { items.append(Item(message: message)) }
        if let error = object["error"] as? String { items.append(Item(message: error)) }
        if let error = object["error"] as? [String: Any], let message = error["message"] as? String { items.append(Item(message: message)) }
        if let errors = object["errors"] as? [Any] {
            for entry in errors {
                if let text = entry as? String {
                    items.append(Item(message: text))
                } else if let dict = entry as? [String: Any] {
                    let message = (dict["message"] ?? dict["detail"] ?? dict["title"]) as? String ?? "invalid"
                    let pointer = (dict["source"] as? [String: Any])?["pointer"] as? String
                    let field = (dict["field"] ?? dict["attribute"] ?? dict["param"]) as? String
                        ?? pointer.map { String($0.split(separator: "/").last ?? "") }
                    items.append(Item(field: field, message: message))
                }
            }
        }
        if let errors = object["errors"] as? [String: Any] {
            for (field, value) in errors.sorted(by: { $0.key < $1.key }) {
                let message = (value as? [String])?.first ?? (value as? String) ?? "invalid"
                items.append(Item(field: field, message: message))
            }
        }
    }

    /// The body's shape, in our words: safe to show to partners.
    var shape: String {
        if isHTML { return "an HTML page" }
        return items.isEmpty ? "an unreadable body" : "an error body"
    }

    /// One line for logs: what the provider said, shortened.
    var summary: String {
        if isHTML { return "an HTML page" }
        guard !items.isEmpty else { return "an unreadable body" }
        return String(items.map { ($0.field.map { "\($0): " } ?? "") + $0.message }.joined(separator: "; ").prefix(300))
    }
}
