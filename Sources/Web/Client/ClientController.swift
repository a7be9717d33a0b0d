import Hummingbird

/// `GET /api/client/`: what the browser client needs before anyone logs in.
struct ClientController: Sendable {
    let tileURL: String

    func addRoutes(to router: Router<HubRequestContext>) {
        router.get("/api/client/") { _, _ in JSONResponse.make(["tile_url": tileURL]) }
    }
}
