import Foundation

/// What the core knows of one provider: its id, its capabilities and its rules. The module in
/// `Sources/Providers/<Name>/` implements it (with its adapter, configuration and simulator); the core asks it, never
/// for a name.
public protocol ProviderDefinition: Sendable {
    var kind: ProviderKind { get }
    /// For people: "Wrapp".
    var displayName: String { get }
    var capabilities: ProviderCapabilities { get }

    /// The provider's own profile rules (required fields, formats), on top of the general ones every tenant passes.
    func validate(_ profile: Profile) -> [FieldError]

    /// Maximum lengths per profile field, when the provider's are not the general ones (`ProfileValidator`).
    var lengthLimits: LengthLimits? { get }

    /// Whether the provider holds a profile field once submitted, so it is frozen (`409 profile_frozen`).
    func holds(_ field: String) -> Bool

    /// The fields of credentials typed in (`PUT …/credentials`): all required strings, kept as given beside
    /// `provider`. Empty unless `capabilities.acceptsTypedCredentials`.
    var credentialInputFields: [CredentialInputField] { get }

    /// Why there is no onboarding URL to give, when `capabilities.hasOnboardingURL` is false.
    var withoutOnboardingURL: String { get }

    /// Credentials typed in (`PUT …/credentials`), checked: by default `credentialInputFields`, kept as given beside
    /// `provider` (`typedCredentials(fromInput:)`); a module may add what follows from them.
    func credentials(fromInput object: [String: JSONValue]) -> CredentialInput
}

extension ProviderDefinition {
    public var lengthLimits: LengthLimits? { nil }
    public var credentialInputFields: [CredentialInputField] { [] }
    public var withoutOnboardingURL: String { "nothing to open" }
}

/// Per-field maximum lengths, and how the provider counts characters.
public struct LengthLimits: Sendable {
    public enum Counting: Sendable {
        /// Unicode code points, as JSON Schema counts (`maxLength`).
        case codePoints
        /// UTF-16 code units, as .NET counts.
        case utf16
    }

    public var counting: Counting
    public var limits: [(path: String, max: Int, value: @Sendable (Profile) -> String?)]

    public init(counting: Counting, limits: [(path: String, max: Int, value: @Sendable (Profile) -> String?)]) {
        self.counting = counting
        self.limits = limits
    }

    func length(_ value: String) -> Int {
        switch counting {
        case .codePoints: value.lengthForLimits
        case .utf16: value.utf16.count
        }
    }
}

/// One field of typed-in credentials: a required string of 1 to `maxLength` characters.
public struct CredentialInputField: Sendable, Equatable {
    public var name: String
    public var maxLength: Int

    public init(_ name: String, maxLength: Int = 512) {
        self.name = name
        self.maxLength = maxLength
    }
}

extension ProviderDefinition {
    /// Credentials typed in, checked against `credentialInputFields`: every problem named, nothing kept on error.
    /// `provider` is allowed beside the fields; whether it names this provider is the caller's to check.
    public func credentials(fromInput object: [String: JSONValue]) -> CredentialInput {
        typedCredentials(fromInput: object)
    }

    /// The default reading of typed-in credentials: every `credentialInputFields` entry required, trimmed, bounded.
    public func typedCredentials(fromInput object: [String: JSONValue]) -> CredentialInput {
        guard capabilities.acceptsTypedCredentials, !credentialInputFields.isEmpty else {
            return .refused([FieldError(field: "provider", code: "mismatch", message: "This tenant is onboarded onto \(kind.rawValue).")])
        }
        var errors: [FieldError] = []
        let allowed = Set(["provider"] + credentialInputFields.map(\.name))
        for key in object.keys.sorted() where !allowed.contains(key) {
            errors.append(FieldError(field: String(key.prefix(64)), code: "unknown_field", message: "This field is not accepted here."))
        }
        var fields: [String: JSONValue] = [:]
        for field in credentialInputFields {
            switch object[field.name] {
            case nil, .null?:
                errors.append(FieldError(field: field.name, code: "required", message: "This field is required."))
            case .string(let text)?:
                let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if value.isEmpty || value.lengthForLimits > field.maxLength {
                    errors.append(FieldError(field: field.name, code: "invalid", message: "Must be 1 to \(field.maxLength) characters."))
                } else {
                    fields[field.name] = .string(value)
                }
            case _?:
                errors.append(FieldError(field: field.name, code: "invalid_type", message: "Must be a string."))
            }
        }
        guard errors.isEmpty else { return .refused(errors) }
        return .accepted(ProviderCredentials(provider: kind, fields: fields))
    }
}

/// Credentials typed in, as the module's fields read them.
public enum CredentialInput: Sendable, Equatable {
    case accepted(ProviderCredentials)
    /// Every problem, named by field; nothing is kept.
    case refused([FieldError])
}

/// Every provider this build knows, made in one place at start (`ProviderModules` in `Sources/Providers`). An id
/// it does not hold is unknown: a stored row naming one is an error that names the row, never a default.
public struct ProviderRegistry: Sendable {
    public let definitions: [ProviderKind: any ProviderDefinition]

    public init(_ definitions: [any ProviderDefinition]) {
        self.definitions = Dictionary(definitions.map { ($0.kind, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The registered ids, sorted.
    public var kinds: [ProviderKind] { definitions.keys.sorted() }

    public func definition(_ kind: ProviderKind) -> (any ProviderDefinition)? { definitions[kind] }

    /// A registered provider by its id as text (a path segment, a query value), or nil.
    public func kind(named name: String) -> ProviderKind? {
        ProviderKind(rawValue: name).flatMap { definitions[$0] == nil ? nil : $0 }
    }

    /// "wrapp, magnifinance": for messages.
    public var namesList: String { kinds.map(\.rawValue).joined(separator: ", ") }
}
