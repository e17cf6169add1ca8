/// The few fixed shapes input is checked against, scanned over its UTF-8 bytes.
///
/// Each states the regular expression it decides, and a test holds it to that expression over generated strings.
/// A Swift regex literal is parsed and compiled again each time it is evaluated: the email check alone was a fifth
/// of a create's CPU. Every shape here is ASCII only, so a string with any other byte never matches.
public enum ASCIIPatterns {
    /// `[A-Za-z0-9._%+\-']+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+`
    public static func isEmail(_ text: String) -> Bool {
        let bytes = text.utf8
        guard let at = bytes.firstIndex(of: UInt8(ascii: "@")) else { return false }
        let local = bytes[..<at]
        guard !local.isEmpty, local.allSatisfy(isEmailLocal) else { return false }
        var labels = 0
        for label in bytes[bytes.index(after: at)...].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard isHostLabel(label, isEnd: isAlphanumeric, isInner: { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }) else { return false }
            labels += 1
        }
        return labels >= 2
    }

    /// `\+?[0-9 ()\-.]+`
    public static func isPhoneShape(_ text: String) -> Bool {
        var bytes = Substring(text).utf8
        if bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        return !bytes.isEmpty && bytes.allSatisfy { isDigit($0) || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "(") || $0 == UInt8(ascii: ")") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    /// `[0-9]{4}-[0-9]{3}`, a Portuguese post code.
    public static func isPortuguesePostCode(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.count == 8 && bytes[4] == UInt8(ascii: "-") && bytes[..<4].allSatisfy(isDigit) && bytes[5...].allSatisfy(isDigit)
    }

    /// `[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?`, a DNS label in lower case.
    public static func isLowercaseDNSLabel(_ text: String) -> Bool {
        let bytes = text.utf8
        return bytes.count <= 63 && isHostLabel(Substring(text).utf8, isEnd: isLowerAlphanumeric, isInner: { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") })
    }

    /// Not empty, its first and last bytes `isEnd`, the ones between `isInner`.
    private static func isHostLabel(_ label: Substring.UTF8View, isEnd: (UInt8) -> Bool, isInner: (UInt8) -> Bool) -> Bool {
        guard let first = label.first, let last = label.last, isEnd(first), isEnd(last) else { return false }
        return label.dropFirst().dropLast().allSatisfy(isInner)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool { isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) }
    private static func isAlphanumeric(_ byte: UInt8) -> Bool { isLowerAlphanumeric(byte) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) }
    private static func isEmailLocal(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "'")
    }
}
