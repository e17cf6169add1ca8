import GatewayTesting
import Providers

/// The shipped providers' simulators, by name, for these tests (the harness itself names no provider).
extension SandboxHarness {
    var wrapp: WrappSimulator { simulator(WrappSimulator.self) }
    var magni: MagniFinanceSimulator { simulator(MagniFinanceSimulator.self) }
    var invoicexpress: InvoiceXpressSimulator { simulator(InvoiceXpressSimulator.self) }
}
