import Foundation

/// Which profile fields may still change once a tenant was submitted (`docs/providers.md`, "Profile changes").
///
/// A field the provider already holds is frozen (`409 profile_frozen`) while the provider may act on it: correcting
/// it here would leave the tenant waiting on data nobody submitted. Nothing is frozen while the tenant is `failed`
/// (the provider refused it; `retry` resubmits), nor for a `pending` tenant whose provider's submission is safe to
/// repeat (Wrapp) and is made again at once with the corrected data. A pending MagniFinance tenant is frozen once an
/// AddPartner may have been made, because its outcome is not known yet.
public enum ProfileFreeze {
    /// The dotted names of the fields that changed between two profiles.
    public static func changedFields(from old: Profile, to new: Profile) -> [String] {
        var fields: [String] = []
        if old.email != new.email { fields.append("profile.email") }
        if old.phone != new.phone { fields.append("profile.phone") }
        if old.contactName != new.contactName { fields.append("profile.contact_name") }
        let a = old.company ?? Company(), b = new.company ?? Company()
        if a.taxID != b.taxID { fields.append("profile.company.tax_id") }
        if a.legalName != b.legalName { fields.append("profile.company.legal_name") }
        if a.address != b.address { fields.append("profile.company.address") }
        if a.city != b.city { fields.append("profile.company.city") }
        if a.postCode != b.postCode { fields.append("profile.company.post_code") }
        if a.country != b.country { fields.append("profile.company.country") }
        return fields
    }

    /// The changed fields that may not change now; empty when the correction is allowed.
    public static func frozen(_ changed: [String], tenant: Tenant, provider: any ProviderDefinition, submissionPending: Bool) -> [String] {
        switch tenant.state {
        case .failed, .offboarded:
            return []
        case .pending where provider.capabilities.submissionIsIdempotent || !submissionPending:
            return []
        case .pending, .actionRequired, .active, .suspended:
            return changed.filter { provider.holds($0) }
        }
    }
}
