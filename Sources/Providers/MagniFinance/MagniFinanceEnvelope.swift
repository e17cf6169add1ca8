import Foundation

/// MagniFinance's response envelope, read tolerantly: `Type` as int or string, `ElementNumber` as int or string,
/// every field optional, errors that arrive with HTTP 200. Built from `JSONSerialization` on purpose: a strict
/// `Decodable` would turn each undocumented variant into a decoding failure.
struct MagniFinanceEnvelope {
    struct ValidationError {
        var field: String?
        var type: String?
        var detail: String?
    }

    var isError: Bool
    var errorCode: Int?
    var errorName: String?
    var humanReadable: String?
    var validationErrors: [ValidationError]
    var object: Any?

    static let partnershipNotFound = 38
    static let authenticationError = 1
    static let validationError = 2
    static let invalidTaxID = 4
    static let elementDoesNotExist = 6
    static let typeInvalid = 7

    /// nil when the body is not a JSON object (an HTML page, garbage).
    init?(_ body: Data) {
        guard let dict = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
        let errorValue = dict["ErrorValue"] as? [String: Any]
        errorCode = errorValue.flatMap { Self.int($0["Value"]) }
        errorName = errorValue?["Name"] as? String
        humanReadable = dict["ErrorHumanReadable"] as? String
        validationErrors = (dict["ValidationErrors"] as? [Any] ?? []).compactMap { entry in
            guard let item = entry as? [String: Any] else { return nil }
            return ValidationError(
                field: (item["Field"] as? String) ?? (item["FieldName"] as? String),
                type: (item["Type"] as? String) ?? Self.int(item["Type"]).map(String.init),
                detail: item["Detail"] as? String
            )
        }
        object = dict["Object"]

        let typeSaysError: Bool? = {
            if let number = Self.int(dict["Type"]) { return number != 0 }
            if let text = dict["Type"] as? String { return text.caseInsensitiveCompare("Success") != .orderedSame }
            return nil
        }()
        let flags = [dict["IsError"] as? Bool, (dict["IsSuccess"] as? Bool).map(!), typeSaysError].compactMap { $0 }
        isError = flags.contains(true) || (errorCode ?? 0) != 0 || !validationErrors.isEmpty
    }

    /// Numbers arrive as numbers or as strings.
    static func int(_ value: Any?) -> Int? {
        if let number = value as? Int { return number }
        if let text = value as? String { return Int(text) }
        return nil
    }

    var isPartnershipNotFound: Bool {
        errorCode == Self.partnershipNotFound || errorName == "PartnershipNotFound"
            || errorCode == Self.elementDoesNotExist || errorName == "ElementDoesNotExist"
    }

    /// A refusal of AddPartner because the partnership is already there (requested or granted). MagniFinance
    /// documents no code for it (`providers.md`: unknown), so a name or text that says so is what counts.
    var saysPartnershipExists: Bool {
        let name = (errorName ?? "").lowercased()
        if name.contains("alreadyexist") || name.contains("partnershipexists") { return true }
        let text = (humanReadable ?? "").lowercased()
        return text.contains("already") && text.contains("partner")
    }

    var isDataRejection: Bool {
        !validationErrors.isEmpty || [Self.validationError, Self.invalidTaxID, Self.typeInvalid].contains(errorCode ?? -1)
    }

    var summary: String {
        let code = errorCode.map { "\($0)" } ?? "?"
        return "ErrorValue \(code) \(errorName ?? "")".trimmingCharacters(in: .whitespaces)
    }
}
