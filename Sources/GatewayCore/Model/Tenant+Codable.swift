import Foundation

/// The tenant's JSON as the public contract shows it; also how event snapshots are stored.
/// Optional fields are written as `null`, never left out, so clients see every field every time.
extension Tenant: Codable {
    enum CodingKeys: String, CodingKey {
        case id, provider, state, profile, metadata
        case externalID = "external_id"
        case nextAction = "next_action"
        case providerStatus = "provider_status"
        case credentialsAvailable = "credentials_available"
        case lastError = "last_error"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case stateChangedAt = "state_changed_at"
        case providerDetails = "provider_details"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id),
            provider: try c.decode(ProviderKind.self, forKey: .provider),
            externalID: try c.decode(String.self, forKey: .externalID),
            state: try c.decode(TenantState.self, forKey: .state),
            nextAction: try c.decodeIfPresent(NextAction.self, forKey: .nextAction),
            providerStatus: try c.decodeIfPresent(String.self, forKey: .providerStatus),
            profile: try c.decode(Profile.self, forKey: .profile),
            metadata: try c.decodeIfPresent([String: String].self, forKey: .metadata) ?? [:],
            credentialsAvailable: try c.decode(Bool.self, forKey: .credentialsAvailable),
            lastError: try c.decodeIfPresent(TenantError.self, forKey: .lastError),
            createdAt: try c.decode(Date.self, forKey: .createdAt),
            updatedAt: try c.decode(Date.self, forKey: .updatedAt),
            stateChangedAt: try c.decode(Date.self, forKey: .stateChangedAt),
            providerDetails: try c.decodeIfPresent(ProviderDetails.self, forKey: .providerDetails)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(provider, forKey: .provider)
        try c.encode(externalID, forKey: .externalID)
        try c.encode(state, forKey: .state)
        if let nextAction, nextAction.type == .redirectToURL, let links = encoder.userInfo[.onboardingLinks] as? any OnboardingLinkMaker {
            try c.encode(NextActionWithLink(nextAction, link: links.onboardingLink(for: id)), forKey: .nextAction)
        } else {
            try c.encode(nextAction, forKey: .nextAction)
        }
        try c.encode(providerStatus, forKey: .providerStatus)
        try c.encode(profile, forKey: .profile)
        try c.encode(credentialsAvailable, forKey: .credentialsAvailable)
        try c.encode(lastError, forKey: .lastError)
        try c.encode(metadata, forKey: .metadata)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(stateChangedAt, forKey: .stateChangedAt)
        try c.encode(providerDetails, forKey: .providerDetails)
    }
}

/// Makes the stable `/onboard/…` link of a tenant. Set in an encoder's `userInfo[.onboardingLinks]`, it adds
/// `next_action.onboarding_link` to every tenant that encoder writes; stored snapshots are written without one.
public protocol OnboardingLinkMaker: Sendable {
    func onboardingLink(for tenantID: String) -> String
}

extension CodingUserInfoKey {
    public static let onboardingLinks = CodingUserInfoKey(rawValue: "gateway.onboardingLinks")!
}

private struct NextActionWithLink: Encodable {
    var type: NextAction.Kind
    var url: String?
    var onboarding_link: String

    init(_ action: NextAction, link: String) {
        type = action.type
        url = action.url
        onboarding_link = link
    }
}

extension JSONEncoder {
    /// The encoder for everything the gateway writes as JSON: ISO 8601 dates, stable key order.
    public static var gateway: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    public static var gateway: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
