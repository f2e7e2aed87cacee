//! The read-only dashboard: token access over HTTP, then the page as headless Chromium renders
//! it (Debian's `chromium`): its DOM and a screenshot.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton::deliver::Outbound;
use baton::serve::Server;
use chrono::Utc;

use crate::history::seed_at;
use crate::support::{Running, app, sqlite};

const TOKEN: &str = "dashboard-test-token-1f2e3d";

async fn dashboard(token: Option<&str>) -> Running {
    let store = sqlite().await;
    seed_at(&store, Utc::now()).await;
    let server = Server { dashboard_token: token.map(String::from), ..Server::new(app(store), Outbound::default()) };
    Running::start(server).await
}

/// Chromium, or `None` (said loudly) when it is not installed and not required.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("BATON_REQUIRE_CHROMIUM").is_err(),
            "BATON_REQUIRE_CHROMIUM is set but no chromium is installed (apt-get install chromium)"
        );
        eprintln!("SKIPPED: the dashboard's browser test needs Debian's `chromium` package");
    }
    found
}

fn headless(browser: &Path, profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[tokio::test]
async fn the_dashboard_needs_its_token_and_says_how_to_give_it() {
    let off = dashboard(None).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = http.get(format!("{}/dashboard", off.url)).send().await.expect("get");
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.expect("text").contains("set BATON_DASHBOARD_TOKEN"));
    off.stop().await;

    let on = dashboard(Some(TOKEN)).await;
    let get = |path: String| http.get(format!("{}{path}", on.url)).send();
    let missing = get("/dashboard".into()).await.expect("get");
    assert_eq!(missing.status(), 401);
    assert!(missing.text().await.expect("text").contains("/dashboard?token=<BATON_DASHBOARD_TOKEN>"));
    let wrong = get("/dashboard?token=guess".into()).await.expect("get");
    assert_eq!(wrong.status(), 401);

    // The token in the address is swapped for a cookie at once.
    let login = get(format!("/dashboard?seam=sales-to-cs&token={TOKEN}")).await.expect("get");
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/dashboard?seam=sales-to-cs");
    let cookie = login.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let page = http
        .get(format!("{}/dashboard?seam=sales-to-cs", on.url))
        .header("cookie", cookie.split(';').next().expect("pair"))
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("<td>sales-to-cs</td>") && !html.contains("<td>marketing-to-eng</td>"));

    let bearer = |path: &str| http.get(format!("{}{path}", on.url)).bearer_auth(TOKEN).send();
    let bad = bearer("/dashboard?window=forever").await.expect("get");
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.expect("text").contains("write 90d or 12w"));
    // A seam in another case is the seam: filtered and selected in the form.
    let cased = bearer("/dashboard?seam=Sales-to-CS").await.expect("get").text().await.expect("html");
    assert!(cased.contains("<option selected>sales-to-cs</option>") && cased.contains("seam=sales-to-cs"), "{cased}");
    assert!(!cased.contains("<td>marketing-to-eng</td>"));
    let unknown = bearer("/dashboard?seam=nope").await.expect("get");
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.expect("text").contains("there is no seam `nope`"));
    let reference = bearer("/dashboard/model").await.expect("get").text().await.expect("text");
    assert!(reference.contains("generated from the configuration in force") && reference.contains("sales-to-cs"));
    // Text from the database is escaped, never markup.
    assert!(!html.contains("<script"));
    on.stop().await;
}

#[tokio::test]
async fn chromium_renders_the_dashboard_with_its_tables_chart_and_health_report() {
    let Some(browser) = chromium() else { return };
    let running = dashboard(Some(TOKEN)).await;
    let dir = std::env::temp_dir().join(format!("baton-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("{}/dashboard?window=28d&token={TOKEN}", running.url);

    let browser_run = {
        let (browser, dir, url) = (browser.clone(), dir.clone(), url.clone());
        tokio::task::spawn_blocking(move || headless(&browser, &dir.join("profile-dom"), &["--dump-dom", &url]))
    };
    let out = browser_run.await.expect("join");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "<h1>Stall history</h1>",
        "last 28 days · every seam",
        "<td>sales-to-cs</td><td>10</td><td>10</td><td>50m</td><td>1h30m</td><td>5h</td><td>9h</td><td class=\"better\">50% shorter</td>",
        "<td>capacity</td><td>3</td><td>1</td><td>rising</td>",
        "Is throughput stable per seam?",
        "<svg",
        "marketing-to-eng p50",
    ] {
        assert!(dom.contains(needle), "{needle:?} not in the rendered page:\n{dom}");
    }

    let shot = dir.join("dashboard.png");
    let screenshot = {
        let (browser, dir, shot, url) = (browser.clone(), dir.clone(), shot.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let arg = format!("--screenshot={}", shot.display());
            headless(&browser, &dir.join("profile-shot"), &[&arg, "--window-size=1200,1800", &url])
        })
    };
    let out = screenshot.await.expect("join");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).expect("screenshot")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut pixels).expect("frame");
    assert_eq!((frame.width, frame.height), (1200, 1800));
    let channels = frame.color_type.samples();
    let rgb: Vec<(u8, u8, u8)> = pixels[..frame.buffer_size()].chunks(channels).map(|p| (p[0], p[1], p[2])).collect();
    // The chart was drawn: marketing-to-eng's line in orange and sales-to-cs's in green.
    for (colour, seam) in [((255, 127, 14), "marketing-to-eng"), ((44, 160, 44), "sales-to-cs")] {
        let n = rgb.iter().filter(|p| **p == colour).count();
        assert!(n > 50, "{n} pixels of {seam}'s colour {colour:?} in the screenshot");
    }
    // And text: a good share of the page is neither white nor near-white.
    let inked = rgb.iter().filter(|(r, g, b)| u16::from(*r) + u16::from(*g) + u16::from(*b) < 600).count();
    assert!(inked > 5_000, "only {inked} dark pixels: the page looks blank");
    running.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}
