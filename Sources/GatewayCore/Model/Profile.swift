import Foundation

/// The end customer's details as the partner supplied them; field names follow the public contract.
public struct Profile: Codable, Sendable, Equatable {
    public var email: String?
    public var phone: String?
    public var contactName: String?
    public var company: Company?

    public init(email: String? = nil, phone: String? = nil, contactName: String? = nil, company: Company? = nil) {
        self.email = email
        self.phone = phone
        self.contactName = contactName
        self.company = company
    }

    enum CodingKeys: String, CodingKey {
        case email, phone, company
        case contactName = "contact_name"
    }
}

/// The customer's company, as MagniFinance needs it (Wrapp takes none of it).
public struct Company: Codable, Sendable, Equatable {
    public var taxID: String?
    public var legalName: String?
    public var address: String?
    public var city: String?
    public var postCode: String?
    public var country: String?

    public init(
        taxID: String? = nil, legalName: String? = nil, address: String? = nil,
        city: String? = nil, postCode: String? = nil, country: String? = nil
    ) {
        self.taxID = taxID
        self.legalName = legalName
        self.address = address
        self.city = city
        self.postCode = postCode
        self.country = country
    }

    enum CodingKeys: String, CodingKey {
        case address, city, country
        case taxID = "tax_id"
        case legalName = "legal_name"
        case postCode = "post_code"
    }
}
