import Foundation

/// Checks a tenant's input before any provider is called. Every problem is reported at once, named by the
/// request's dotted field names, so the partner can fix them all in one go.
public enum ProfileValidator {
    /// Generous limits for every provider, so nothing unbounded is stored.
    static let generalMaxLengths = LengthLimits(counting: .codePoints, limits: [
        ("profile.email", 254, { $0.email }),
        ("profile.phone", 32, { $0.phone }),
        ("profile.contact_name", 200, { $0.contactName }),
        ("profile.company.tax_id", 20, { $0.company?.taxID }),
        ("profile.company.legal_name", 200, { $0.company?.legalName }),
        ("profile.company.address", 500, { $0.company?.address }),
        ("profile.company.city", 100, { $0.company?.city }),
        ("profile.company.post_code", 20, { $0.company?.postCode }),
    ])

    public static let maxMetadataKeys = 50
    public static let maxMetadataKeyLength = 40
    public static let maxMetadataValueLength = 500
    public static let maxExternalIDLength = 255

    public static func validate(provider: any ProviderDefinition, externalID: String, profile: Profile, metadata: [String: String]) -> [FieldError] {
        var errors = validateExternalID(externalID)
        errors += validate(profile, for: provider)
        errors += validate(metadata)
        return errors
    }

    public static func validateExternalID(_ externalID: String) -> [FieldError] {
        if externalID.trimmingCharacters(in: .whitespaces).isEmpty {
            return [FieldError(field: "external_id", code: "required", message: "external_id must not be empty.")]
        }
        if externalID.lengthForLimits > maxExternalIDLength {
            return [FieldError(field: "external_id", code: "too_long", message: "external_id is at most \(maxExternalIDLength) characters.")]
        }
        if externalID.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return [FieldError(field: "external_id", code: "invalid", message: "external_id must not contain control characters.")]
        }
        return []
    }

    /// The general rules and the provider's own (`ProviderDefinition.validate`), with the provider's length limits
    /// where it has its own.
    public static func validate(_ profile: Profile, for provider: any ProviderDefinition) -> [FieldError] {
        var errors = provider.validate(profile)
        // The provider's limits where it has them, the general ones for every other field: nothing is unbounded.
        let own = provider.lengthLimits
        let ownPaths = Set(own?.limits.map(\.path) ?? [])
        var checks = own.map { limits in limits.limits.map { (limit: $0, limits: limits) } } ?? []
        checks += generalMaxLengths.limits.filter { !ownPaths.contains($0.path) }.map { (limit: $0, limits: generalMaxLengths) }
        for (limit, limits) in checks {
            if let value = limit.value(profile), limits.length(value) > limit.max {
                errors.append(FieldError(field: limit.path, code: "too_long", message: "At most \(limit.max) characters."))
            }
        }

        if let email = profile.email, !isBlank(email), !isPlausibleEmail(email) {
            errors.append(FieldError(field: "profile.email", code: "invalid", message: "Not a valid email address."))
        }
        if let phone = profile.phone, !isBlank(phone), !isPlausiblePhone(phone) {
            errors.append(FieldError(field: "profile.phone", code: "invalid", message: "Not a plausible phone number: use 7 to 15 digits, international format like +302101234567."))
        }
        errors += validate(profile.company)
        return errors
    }

    private static func validate(_ company: Company?) -> [FieldError] {
        guard let company else { return [] }
        var errors: [FieldError] = []
        let country = company.country
        if let country, !isBlank(country), !CountryCodes.assigned.contains(country) {
            errors.append(FieldError(field: "profile.company.country", code: "invalid", message: "Use an ISO 3166-1 alpha-2 code in capitals, like PT or GR."))
        }
        if let taxID = company.taxID, !isBlank(taxID) {
            switch country {
            case "PT" where !TaxIdentifiers.isValidPortugueseNIF(taxID):
                errors.append(FieldError(field: "profile.company.tax_id", code: "invalid_tax_id", message: "Not a valid Portuguese NIF: nine digits with a correct check digit."))
            case "GR" where !TaxIdentifiers.isValidGreekAFM(taxID):
                errors.append(FieldError(field: "profile.company.tax_id", code: "invalid_tax_id", message: "Not a valid Greek AFM: nine digits with a correct check digit."))
            default:
                break
            }
        }
        return errors
    }

    public static func validate(_ metadata: [String: String]) -> [FieldError] {
        var errors: [FieldError] = []
        if metadata.count > maxMetadataKeys {
            errors.append(FieldError(field: "metadata", code: "too_many_keys", message: "At most \(maxMetadataKeys) keys."))
        }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty || key.lengthForLimits > maxMetadataKeyLength {
                errors.append(FieldError(field: "metadata", code: "invalid_key", message: "Keys are 1 to \(maxMetadataKeyLength) characters."))
            } else if value.lengthForLimits > maxMetadataValueLength {
                errors.append(FieldError(field: "metadata.\(key)", code: "too_long", message: "At most \(maxMetadataValueLength) characters."))
            }
        }
        return errors
    }

    public static func isPlausibleEmail(_ email: String) -> Bool {
        ASCIIPatterns.isEmail(email)
    }

    static func isPlausiblePhone(_ phone: String) -> Bool {
        guard ASCIIPatterns.isPhoneShape(phone) else { return false }
        let digits = phone.utf8.count { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return (7...15).contains(digits)
    }

    public static func isBlank(_ value: String?) -> Bool {
        value?.trimmingCharacters(in: .whitespaces).isEmpty ?? true
    }

    public static func required(_ field: String, _ message: String) -> FieldError {
        FieldError(field: field, code: "required", message: message)
    }
}

extension String {
    /// Length as limits count it: Unicode code points, like JSON Schema's maxLength. `count` (grapheme clusters)
    /// would let a short-looking string of combining marks through.
    public var lengthForLimits: Int { unicodeScalars.count }
}
