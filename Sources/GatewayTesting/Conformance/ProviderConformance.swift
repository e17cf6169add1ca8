import Foundation
import GatewayCore
import GatewayServer
import HTTPTypes
import Providers

/// The conformance kit: what every provider module must do, run against its own simulator over loopback HTTP. Each
/// check returns its failures (empty: it holds), so any test framework can assert on them. Run all of them with
/// `ProviderConformance.failures(of:in:)` inside `SandboxHarness.run(modules:)`.
public enum ProviderConformance {
    /// Every check, in order; the failures name the check and the module.
    public static func failures(of subject: ConformanceSubject, in harness: SandboxHarness) async throws -> [String] {
        var failures = contract(subject)
        failures += await faults(subject, in: harness)
        failures += await lostOutcome(subject, in: harness)
        failures += await refusal(subject, in: harness)
        failures += try await journey(subject, in: harness)
        return failures.map { "\(subject.module.kind.rawValue): \($0)" }
    }

    /// How long the kit's adapters wait for an answer: long enough for a loaded test machine, shorter than the
    /// delays of the timeout and late-success faults (`FaultClass.slow`).
    public static let timeout: TimeInterval = 3

    /// The module's adapter, pointed at its simulator in `harness`, with the kit's timeout.
    public static func adapter(_ subject: ConformanceSubject, in harness: SandboxHarness) -> any OnboardingProvider {
        let kind = subject.module.kind
        let configuration = harness.gateway.config.providers[kind]!
        // The sandbox's base URL is a path on the gateway (`/sandbox/<id>`, with the module's own placeholders).
        let base = harness.gateway.address.loopbackURL + configuration.baseURL
        return subject.module.makeAdapter(configuration, baseURL: { base }, http: .live(timeout: timeout))
    }

    static func view(_ externalID: String, _ profile: Profile, in harness: SandboxHarness, _ kind: ProviderKind) -> ProviderTenant {
        ProviderTenant(
            tenantID: "ten_conformance", externalID: externalID, profile: profile, hasCredentials: false,
            webhookURL: harness.gateway.address.loopbackURL + "/webhooks/\(kind.rawValue)/conformance-unused"
        )
    }

    static func fresh(_ label: String) -> String { "conf-\(label)-\(UUID().uuidString.prefix(8).lowercased())" }

    // MARK: - The module's own word

    /// Capabilities agree with the adapter, the credentials codec round-trips, the OpenAPI fragments hold their
    /// examples, and the create example passes the module's rules.
    public static func contract(_ subject: ConformanceSubject) -> [String] {
        let module = subject.module
        var failures: [String] = []
        let openAPI = module.openAPI
        let check = SchemaCheck(schemas: openAPI.schemas)
        guard let schema = openAPI.schemas[openAPI.credentialsSchema] else { return ["contract: no schema named \(openAPI.credentialsSchema)"] }
        for (name, fragment) in openAPI.schemas.sorted(by: { $0.key < $1.key }) {
            // A schema is checked against itself for unknown keywords by validating a null through it.
            failures += check.problems(.null, against: fragment).filter { $0.contains("unknown keyword") || $0.contains("$ref") }.map { "schema \(name): \($0)" }
        }
        failures += check.problems(openAPI.credentialsExample, against: schema).map { "credentials example: \($0)" }
        do {
            let data = try JSONEncoder().encode(openAPI.credentialsExample)
            let credentials = try JSONDecoder().decode(ProviderCredentials.self, from: data)
            if credentials.provider != module.kind { failures.append("credentials example names \(credentials.provider), not \(module.kind)") }
            let again = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(credentials))
            if again != openAPI.credentialsExample { failures.append("credentials do not round-trip through the codec") }
            if module.capabilities.acceptsTypedCredentials {
                // What is typed in is the input fields; the rest of the example follows from them.
                let names = Set(module.credentialInputFields.map(\.name))
                guard case .object(let example) = openAPI.credentialsExample,
                    case .accepted(let typed) = module.credentials(fromInput: example.filter { names.contains($0.key) })
                else {
                    failures.append("typed-in credentials: the example is refused")
                    return failures
                }
                if typed != credentials { failures.append("typed-in credentials differ from the stored shape") }
                failures += check.problems(try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(typed)), against: schema)
                    .map { "typed-in credentials: \($0)" }
            } else if module.credentialInputFields.isEmpty == false {
                failures.append("credential input fields without accepts_typed_credentials")
            }
        } catch {
            failures.append("credentials example does not decode: \(error)")
        }
        if case .object(let create) = openAPI.createExample, case .object(let profileJSON)? = create["profile"],
            let profile = try? JSONDecoder().decode(Profile.self, from: JSONEncoder().encode(JSONValue.object(profileJSON)))
        {
            if create["provider"] != .string(module.kind.rawValue) { failures.append("create example names another provider") }
            let errors = ProfileValidator.validate(provider: module, externalID: "example", profile: profile, metadata: [:])
            if !errors.isEmpty { failures.append("create example is refused: \(errors.map(\.field))") }
        } else {
            failures.append("create example has no profile")
        }
        if module.capabilities.receivesWebhooks, subject.webhookURL == nil || subject.webhookBody == nil {
            failures.append("receives webhooks, but the subject gives no webhook URL or body")
        }
        if !module.faultOperations.contains(subject.submitOperation) {
            failures.append("the submit operation \(subject.submitOperation) is not among the module's fault operations")
        }
        return failures
    }

    // MARK: - Faults

    /// Each fault class on the first submission is "unavailable, ask again later": never a rejection, never a
    /// credential, and a `Retry-After` the provider sent is kept.
    public static func faults(_ subject: ConformanceSubject, in harness: SandboxHarness) async -> [String] {
        let adapter = adapter(subject, in: harness)
        let simulator = harness.simulator(subject.module.kind)
        var failures: [String] = []
        for fault in FaultClass.all {
            let externalID = fresh("fault")
            await simulator.clearFaults()
            await simulator.add(fault.fault(subject.submitOperation))
            let answer = await adapter.submit(view(externalID, subject.profile(externalID), in: harness, subject.module.kind), previousAttempts: 0)
            guard case .unavailable(_, let retryAfter) = answer.finding else {
                failures.append("\(fault): answered \(answer.finding), not unavailable")
                continue
            }
            if answer.credentials != nil { failures.append("\(fault): credentials came with an unavailable answer") }
            if let expected = fault.retryAfter, retryAfter != expected {
                failures.append("\(fault): Retry-After \(expected) became \(retryAfter.map { "\($0)" } ?? "nothing")")
            }
        }
        await simulator.clearFaults()
        // Late answers still in flight land before the next check looks at the simulator.
        try? await Task.sleep(for: .milliseconds(700))
        return failures
    }

    /// A submission whose answer is lost (it succeeds after the caller gave up) is never made twice: the next
    /// attempt, told an earlier outcome is unknown, finds the first one (a reconcile) instead of submitting again.
    public static func lostOutcome(_ subject: ConformanceSubject, in harness: SandboxHarness) async -> [String] {
        let adapter = adapter(subject, in: harness)
        let simulator = harness.simulator(subject.module.kind)
        let externalID = fresh("lost")
        let profile = subject.profile(externalID)
        let tenant = view(externalID, profile, in: harness, subject.module.kind)
        await simulator.add(SimulatedFault(operation: subject.submitOperation, status: 200, style: .lateSuccess, delayMilliseconds: FaultClass.slow))
        var failures: [String] = []
        let first = await adapter.submit(tenant, previousAttempts: 0)
        if case .unavailable = first.finding {} else { failures.append("lost outcome: the timed-out call answered \(first.finding)") }
        try? await Task.sleep(for: .milliseconds(900))
        let second = await adapter.submit(tenant, previousAttempts: 1)
        if case .rejected = second.finding { failures.append("lost outcome: the retry was rejected: \(second.finding)") }
        let opened = await subject.accountsOpened(simulator, externalID, profile)
        if subject.module.capabilities.submissionIsIdempotent ? opened < 1 : opened != 1 {
            failures.append("lost outcome: the provider saw \(opened) submissions, not 1")
        }
        return failures
    }

    /// A field the provider refuses comes back as a rejection that names it under `profile.*`.
    public static func refusal(_ subject: ConformanceSubject, in harness: SandboxHarness) async -> [String] {
        let externalID = fresh("refused")
        let answer = await adapter(subject, in: harness).submit(
            view(externalID, subject.refusedProfile(externalID), in: harness, subject.module.kind), previousAttempts: 0
        )
        guard case .rejected(let error, _) = answer.finding else { return ["refusal: answered \(answer.finding), not a rejection"] }
        if error.errors.isEmpty { return ["refusal: the rejection names no field"] }
        return error.errors.filter { !$0.field.hasPrefix("profile.") }.map { "refusal: the field \($0.field) is not under profile.*" }
    }
}
