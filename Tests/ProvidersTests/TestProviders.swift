import GatewayTesting
import Providers

/// The providers these tests register: the shipped modules and the test-only Ledgerly. Adding a provider to the tests
/// is its line here.
enum TestProviders {
    static let subjects: [ConformanceSubject] = [.wrapp, .magnifinance, .invoicexpress, .ledgerly]

    static var modules: [any ProviderModule] {
        ProviderModules.shipped + subjects.map(\.module).filter { module in !ProviderModules.shipped.contains { $0.kind == module.kind } }
    }
}
