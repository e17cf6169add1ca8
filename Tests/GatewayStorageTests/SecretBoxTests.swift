import Foundation
import Testing

@testable import GatewayStorage

@Suite struct SecretBoxTests {
    let oldKey = Data(repeating: 1, count: 32)
    let newKey = Data(repeating: 2, count: 32)

    @Test func sealsAndOpens() throws {
        let box = SecretBox(keys: [newKey])
        let sealed = try box.seal(Data("secret-value".utf8), context: "credentials:ten_1")
        #expect(!sealed.contains("secret-value"))
        #expect(sealed.hasPrefix("v1.\(SecretBox.keyID(newKey))."))
        #expect(try box.open(sealed, context: "credentials:ten_1") == Data("secret-value".utf8))
    }

    @Test func aValueCopiedToAnotherRowDoesNotOpen() throws {
        let box = SecretBox(keys: [newKey])
        let sealed = try box.seal(Data("secret".utf8), context: "credentials:ten_1")
        #expect(throws: SecretBox.Failure.self) { try box.open(sealed, context: "credentials:ten_2") }
    }

    @Test func oldKeysStillOpenAfterRotation() throws {
        let sealedWithOld = try SecretBox(keys: [oldKey]).seal(Data("v".utf8), context: "c")
        let rotated = SecretBox(keys: [newKey, oldKey])
        #expect(try rotated.open(sealedWithOld, context: "c") == Data("v".utf8))
        #expect(SecretBox.keyID(ofSealed: try rotated.seal(Data("v".utf8), context: "c")) == SecretBox.keyID(newKey))
        #expect(throws: SecretBox.Failure.self) { try SecretBox(keys: [newKey]).open(sealedWithOld, context: "c") }
    }

    @Test func tamperingIsDetected() throws {
        let box = SecretBox(keys: [newKey])
        let parts = try box.seal(Data("secret".utf8), context: "c").split(separator: ".")
        var bytes = try #require(Data(base64Encoded: String(parts[2])))
        bytes[bytes.count / 2] ^= 0x01
        let tampered = "\(parts[0]).\(parts[1]).\(bytes.base64EncodedString())"
        #expect(throws: SecretBox.Failure.self) { try box.open(tampered, context: "c") }
        #expect(throws: SecretBox.Failure.self) { try box.open("v1.nothing", context: "c") }
    }
}
