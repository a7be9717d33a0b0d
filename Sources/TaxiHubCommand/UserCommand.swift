import ArgumentParser
import Foundation
import Web

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `taxi-hub user`: accounts made from the command line.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage accounts that only the command line can make.", subcommands: [CreateUser.self]
    )
}

/// `taxi-hub user create --operator USERNAME`: an operator account, made by the running hub when
/// one answers at the configured address, else written straight into the store.
struct CreateUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an operator account (riders and drivers sign up in the app).",
        discussion: """
            The password is read from standard input (its first line), or asked for twice at a terminal. \
            When a hub answers at --host/--port, it makes the account (the operator can log in at once); \
            when none does, the account is written into the store (--data-dir or --database-url) and the \
            next hub to start loads it.
            """
    )

    @Flag(name: .customLong("operator"), help: "Make an operator: a read-only account that watches the whole hub.")
    var isOperator = false
    @Argument(help: "The operator's username (letters, digits and @ . + - _).") var username: String
    @Option(name: .customLong("first-name"), help: "First name.") var firstName = ""
    @Option(name: .customLong("last-name"), help: "Last name.") var lastName = ""
    @OptionGroup var options: HubOptions

    func validate() throws {
        guard isOperator else {
            throw ValidationError("Only operators are made here: pass --operator. Riders and drivers sign up in the app.")
        }
    }

    func run() async throws {
        let configuration = try await options.resolve()
        let logger = CommandLogging.bootstrap(level: configuration.logLevel)
        let account = OperatorAccount(
            username: username, password: try PasswordInput.read(), firstName: firstName, lastName: lastName
        )
        let problems = account.problems { _ in false }
        guard problems.isEmpty else { throw ValidationError(OperatorAccountError(fields: problems).description) }

        let hub = configuration.localBaseURL()
        let token = try await OperatorAccounts.adminToken(configuration: configuration, logger: logger)
        if let (status, body) = try await Self.post(account, to: hub + OperatorAccounts.path, token: token) {
            switch status {
            case 201:
                print("operator \(username) created by the hub at \(hub); it can log in now")
            case 403:
                throw ValidationError("The hub at \(hub) refused the admin token: it runs with another JWT secret than this command read.")
            default:
                throw ValidationError("The hub at \(hub) refused the account (\(status)): \(body)")
            }
        } else {
            let user = try await OperatorAccounts.createInStore(account, configuration: configuration, logger: logger)
            print("no hub answers at \(hub): operator \(username) (id \(user.id)) written to the store; a hub loads it when it starts")
        }
    }

    /// The hub's status and body, or nil when no hub answers there.
    static func post(_ account: OperatorAccount, to url: String, token: String) async throws -> (Int, String)? {
        var request = URLRequest(url: URL(string: url)!, timeoutInterval: 10)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.httpBody = try JSONEncoder().encode([
            "username": account.username, "password": account.password, "first_name": account.firstName,
            "last_name": account.lastName,
        ])
        do {
            let (body, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: body, as: UTF8.self))
        } catch let error as URLError where [.cannotConnectToHost, .cannotFindHost, .networkConnectionLost].contains(error.code) {
            return nil
        }
    }
}

/// Reads a password: asked for twice, without echo, at a terminal; else the first line of stdin.
enum PasswordInput {
    static func read() throws -> String {
        guard isatty(STDIN_FILENO) == 1 else {
            guard let line = readLine(strippingNewline: true) else {
                throw ValidationError("No password on standard input.")
            }
            return line
        }
        let first = prompt("Password: ")
        guard prompt("Password (again): ") == first else { throw ValidationError("The passwords do not match.") }
        return first
    }

    private static func prompt(_ text: String) -> String {
        getpass(text).map { String(cString: $0) } ?? ""
    }
}
