import Foundation
import GatewayCore

/// A JSON merge patch of a profile: a given field replaces the old value, `null` clears it, an absent field stays.
struct ProfilePatch: Sendable {
    enum Field: Sendable {
        case keep
        case set(String?)

        func apply(to value: String?) -> String? {
            if case .set(let new) = self { return new }
            return value
        }
    }

    var email = Field.keep, phone = Field.keep, contactName = Field.keep
    var clearsCompany = false
    var taxID = Field.keep, legalName = Field.keep, address = Field.keep, city = Field.keep, postCode = Field.keep, country = Field.keep
    /// Dotted names of the fields given, for the audit log.
    var fields: [String] = []

    static func read(_ reader: FieldReader) -> ProfilePatch {
        reader.allowOnly(["email", "phone", "contact_name", "company"])
        var patch = ProfilePatch()
        func field(_ r: FieldReader, _ key: String) -> Field {
            guard r.object.keys.contains(key) else { return .keep }
            patch.fields.append(r.path(key))
            return .set(r.string(key).flatMap { $0.isEmpty ? nil : $0 })
        }
        patch.email = field(reader, "email")
        patch.phone = field(reader, "phone")
        patch.contactName = field(reader, "contact_name")
        if reader.object["company"] is NSNull {
            patch.clearsCompany = true
            patch.fields.append("profile.company")
        } else if let company = reader.object("company") {
            company.allowOnly(["tax_id", "legal_name", "address", "city", "post_code", "country"])
            patch.taxID = field(company, "tax_id")
            patch.legalName = field(company, "legal_name")
            patch.address = field(company, "address")
            patch.city = field(company, "city")
            patch.postCode = field(company, "post_code")
            patch.country = field(company, "country")
        }
        return patch
    }

    func apply(to profile: Profile) -> Profile {
        var profile = profile
        profile.email = email.apply(to: profile.email)
        profile.phone = phone.apply(to: profile.phone)
        profile.contactName = contactName.apply(to: profile.contactName)
        if clearsCompany {
            profile.company = nil
        } else {
            var company = profile.company ?? Company()
            company.taxID = taxID.apply(to: company.taxID)
            company.legalName = legalName.apply(to: company.legalName)
            company.address = address.apply(to: company.address)
            company.city = city.apply(to: company.city)
            company.postCode = postCode.apply(to: company.postCode)
            company.country = country.apply(to: company.country)
            profile.company = company == Company() ? nil : company
        }
        return profile
    }
}
