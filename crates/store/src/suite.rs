//! The behaviour every store must show, written once and run against each backend.
//!
//! Each store crate's `tests/behaviour.rs` calls [`crate::store_behaviour_suite!`] with an
//! expression that yields a fresh, empty, migrated store (and a guard that deletes it), so
//! every case runs on its own database.

use std::sync::Arc;

use conduit_domain::{Email, Slug, User, Username};

use crate::*;

/// Generates one `#[tokio::test]` per behaviour. `$fresh` is an async expression giving
/// `(store, guard)`; the guard lives until the test ends.
#[macro_export]
macro_rules! store_behaviour_suite {
    ($fresh:expr) => {
        $crate::store_behaviour_suite!(@cases $fresh;
            users_are_created_and_found,
            taken_username_or_email_is_a_conflict_on_that_field,
            user_updates_change_only_given_fields,
            password_hash_can_be_replaced_by_username,
            password_changes_bump_the_token_version,
            admins_list_users_oldest_first_by_active_flag,
            accounts_change_role_and_active_flag,
            user_update_to_taken_name_conflicts_and_changes_nothing,
            follow_and_unfollow_are_idempotent,
            article_round_trips_with_tags_in_order,
            taken_slug_is_a_conflict_and_unique_slug_helper_avoids_it,
            listing_is_newest_first_counts_all_and_omits_bodies,
            listing_filters_by_tag_author_favorited_and_combinations,
            combined_filters_walk_the_narrowest_and_refuse_when_every_one_is_too_broad,
            every_listing_pages_by_cursor_as_it_does_by_offset,
            seeded_data_reads_like_data_written_one_call_at_a_time,
            maintained_counts_follow_every_write,
            the_tags_version_grows_with_every_change_to_tags,
            feed_holds_followed_authors_only,
            update_keeps_or_replaces_tags_and_renames_slug,
            failed_update_changes_nothing,
            only_the_author_updates_or_deletes,
            delete_cascades_to_tags_favorites_and_comments,
            favorites_are_idempotent_and_counted,
            comments_are_listed_oldest_first_and_deleted_by_author_only,
            tags_are_listed_most_used_first,
            sessions_are_stored_replaced_expired_and_deleted,
            concurrent_registrations_of_one_name_give_one_user,
            concurrent_favorites_are_all_counted,
            the_last_active_admin_is_never_demoted_or_deactivated,
            concurrent_demotions_of_two_admins_leave_one,
            ended_sessions_are_kept_on_the_user_until_they_expire,
            mail_is_queued_with_its_change_and_claimed_until_sent,
            concurrent_senders_never_claim_one_message_twice,
            tokens_are_single_use_and_bound_to_their_address,
            deleted_accounts_take_their_content_or_leave_it_to_a_tombstone,
            a_bulk_load_is_unanalyzed_until_analyze,
            a_backup_slot_is_claimed_once_and_admins_are_told,
            search_ranks_title_then_description_then_phrase_then_the_rest,
            search_sees_every_write_at_once_and_escapes_its_snippets,
            an_exact_title_comes_first_however_old,
            a_phrase_ranks_fewer_matches_and_finds_a_rare_one_far_back,
            bodies_are_kept_as_safe_html_beside_their_markdown,
            reports_gather_by_target_once_per_reporter,
            an_action_answers_every_open_report_and_is_logged,
            two_moderators_answering_one_report_at_once_one_wins,
            hidden_articles_leave_listings_counts_and_search,
            hidden_comments_show_to_their_author_and_moderators,
            held_posts_wait_hidden_in_the_queue,
            users_are_found_by_prefix_and_filters,
            a_common_prefix_walks_the_users_by_id,
            notifications_tell_of_what_others_do_once,
            favorites_not_yet_read_are_one_notification,
            notifications_are_read_marked_and_tailed_in_order,
            dropped_notifications_make_a_stream_start_over,
            a_new_article_reaches_the_authors_followers_streams_only,
            account_changes_are_logged_with_who_made_them,
            operations_on_mail_and_backups_are_logged_with_who_did_them,
            suspensions_and_purges_change_the_user,
            blocks_leave_the_blocked_out_for_the_blocker,
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $fresh.await;
                $crate::suite::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

pub type TestStore = Arc<dyn Store>;

fn username(s: &str) -> Username {
    Username::parse(s).expect("a valid username")
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("a valid email")
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).expect("a valid slug")
}

async fn user(store: &dyn Store, name: &str) -> User {
    store
        .create_user(
            &NewUser {
                username: username(name),
                email: email(&format!("{name}@example.com")),
                password_hash: format!("hash-of-{name}"),
            },
            &Outgoing::default(),
        )
        .await
        .expect("create user")
}

fn new_article(title: &str, tags: &[&str]) -> NewArticle {
    NewArticle {
        title: title.into(),
        description: format!("about {title}"),
        body: format!("body of {title}"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

async fn article(store: &dyn Store, author: &User, title: &str, tags: &[&str]) -> conduit_domain::Article {
    let new = new_article(title, tags);
    with_unique_slug(title, |slug| {
        let new = new.clone();
        async move { store.create_article(author.id, &slug, &new, None).await }
    })
    .await
    .expect("create article")
}

fn slugs(page: &Page<conduit_domain::Article>) -> Vec<&str> {
    page.items.iter().map(|a| a.slug.as_str()).collect()
}

fn query() -> ArticleQuery {
    ArticleQuery::default()
}

pub async fn users_are_created_and_found(store: TestStore) {
    let jake = user(&*store, "jake").await;
    assert_eq!(jake.username, "jake");
    assert_eq!(jake.email, "jake@example.com");
    assert_eq!((jake.bio.as_deref(), jake.image.as_deref()), (None, None));

    assert_eq!(store.user_by_id(jake.id).await.unwrap(), Some(jake.clone()));
    assert_eq!(store.user_by_id(UserId::new(jake.id.get() + 1000)).await.unwrap(), None);

    let creds = store.credentials_by_email(&email("jake@example.com")).await.unwrap().unwrap();
    assert_eq!(creds.user, jake);
    assert_eq!(creds.password_hash, "hash-of-jake");
    assert!(store.credentials_by_email(&email("nobody@example.com")).await.unwrap().is_none());
}

pub async fn taken_username_or_email_is_a_conflict_on_that_field(store: TestStore) {
    user(&*store, "jake").await;
    let same_name =
        NewUser { username: username("jake"), email: email("other@example.com"), password_hash: "h".into() };
    assert!(matches!(store.create_user(&same_name, &Outgoing::default()).await, Err(DbError::Conflict("username"))));
    let same_email =
        NewUser { username: username("other"), email: email("jake@example.com"), password_hash: "h".into() };
    assert!(matches!(store.create_user(&same_email, &Outgoing::default()).await, Err(DbError::Conflict("email"))));
    assert!(store.credentials_by_email(&email("other@example.com")).await.unwrap().is_none());
}

pub async fn user_updates_change_only_given_fields(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let changes = UserChanges { bio: Some(Some("I work at statefarm".into())), ..Default::default() };
    let updated = store.update_user(jake.id, &changes).await.unwrap().unwrap();
    assert_eq!(updated.bio.as_deref(), Some("I work at statefarm"));
    assert_eq!((updated.username.as_str(), updated.image.as_deref()), ("jake", None));

    let changes = UserChanges {
        username: Some(username("jacob")),
        email: Some(email("jacob@example.com")),
        password_hash: Some("new-hash".into()),
        surviving_token: Some(crate::rows::grace_token_value("token-1", 2_000_000_000)),
        expected_version: Some(0),
        image: Some(Some("https://example.com/j.png".into())),
        bio: Some(None),
        outgoing: Outgoing::default(),
    };
    let updated = store.update_user(jake.id, &changes).await.unwrap().unwrap();
    assert_eq!(updated.username, "jacob");
    assert_eq!(updated.bio, None);
    assert_eq!((updated.token_version, updated.grace_token.clone()), (1, Some(("token-1".to_owned(), 2_000_000_000))));
    assert_eq!(updated.image.as_deref(), Some("https://example.com/j.png"));
    let creds = store.credentials_by_email(&email("jacob@example.com")).await.unwrap().unwrap();
    assert_eq!(creds.password_hash, "new-hash");

    // A change that expects an earlier token version (its credential revoked meanwhile) is `None`.
    let stale = UserChanges { bio: Some(Some("stale".into())), expected_version: Some(0), ..Default::default() };
    assert_eq!(store.update_user(jake.id, &stale).await.unwrap(), None);
    let current = UserChanges { expected_version: Some(1), ..Default::default() };
    assert_eq!(store.update_user(jake.id, &current).await.unwrap().map(|u| u.bio), Some(None));

    // Nothing to change is not an error, and a vanished user is `None`.
    assert_eq!(store.update_user(jake.id, &UserChanges::default()).await.unwrap(), Some(updated));
    assert_eq!(store.update_user(UserId::new(jake.id.get() + 1000), &changes).await.unwrap(), None);
}

pub async fn password_hash_can_be_replaced_by_username(store: TestStore) {
    let jake = user(&*store, "jake").await;
    user(&*store, "anna").await;
    assert!(store.set_password_hash(&username("jake"), "imported").await.unwrap());
    assert!(!store.set_password_hash(&username("nobody"), "imported").await.unwrap());
    let creds = store.credentials_by_email(&email("jake@example.com")).await.unwrap().unwrap();
    assert_eq!((creds.user.id, creds.password_hash.as_str()), (jake.id, "imported"));
    let anna = store.credentials_by_email(&email("anna@example.com")).await.unwrap().unwrap();
    assert_eq!(anna.password_hash, "hash-of-anna");
}

pub async fn password_changes_bump_the_token_version(store: TestStore) {
    let jake = user(&*store, "jake").await;
    assert_eq!((jake.token_version, jake.role, jake.active), (0, conduit_domain::model::Role::User, true));
    let bio = UserChanges { bio: Some(Some("b".into())), ..Default::default() };
    assert_eq!(store.update_user(jake.id, &bio).await.unwrap().unwrap().token_version, 0);
    let password = UserChanges { password_hash: Some("new".into()), ..Default::default() };
    assert_eq!(store.update_user(jake.id, &password).await.unwrap().unwrap().token_version, 1);
    assert!(store.set_password_hash(&username("jake"), "imported").await.unwrap());
    let imported = store.user_by_id(jake.id).await.unwrap().unwrap();
    assert_eq!((imported.token_version, imported.grace_token), (2, None), "an import spares no token");
}

/// The admin listing's totals: all users, the active ones, the inactive ones.
async fn user_totals(store: &dyn Store) -> (i64, i64, i64) {
    let mut totals = [0; 3];
    for (total, active) in totals.iter_mut().zip([None, Some(true), Some(false)]) {
        *total = store.list_users(active, Paging::default()).await.unwrap().total;
    }
    (totals[0], totals[1], totals[2])
}

pub async fn admins_list_users_oldest_first_by_active_flag(store: TestStore) {
    let mut made = Vec::new();
    for name in ["a", "b", "c", "d"] {
        made.push(user(&*store, name).await);
    }
    store.set_account(&username("b"), &AccountChanges { active: Some(false), ..Default::default() }).await.unwrap();
    let names = |page: Page<User>| (page.items.into_iter().map(|u| u.username).collect::<Vec<_>>(), page.total);
    let all = store.list_users(None, Paging::default()).await.unwrap();
    assert_eq!(names(all), (vec!["a".to_string(), "b".into(), "c".into(), "d".into()], 4));
    let active = store.list_users(Some(true), Paging { limit: 2, offset: 1, cursor: None }).await.unwrap();
    assert_eq!(names(active), (vec!["c".to_string(), "d".into()], 3));
    let inactive = store.list_users(Some(false), Paging::default()).await.unwrap();
    assert_eq!(names(inactive), (vec!["b".to_string()], 1));

    // The totals are kept as accounts come, change and go, not counted per listing.
    store.set_account(&username("b"), &AccountChanges { active: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(user_totals(&*store).await, (4, 4, 0));
    let d = &made[3];
    assert!(store.delete_user(d.id, d.token_version, DeletedContent::Delete, &Outgoing::default()).await.unwrap());
    assert_eq!(user_totals(&*store).await, (3, 3, 0));
    store.set_account(&username("c"), &AccountChanges { active: Some(false), ..Default::default() }).await.unwrap();
    user(&*store, "e").await;
    assert_eq!(user_totals(&*store).await, (4, 3, 1));
}

pub async fn accounts_change_role_and_active_flag(store: TestStore) {
    use conduit_domain::model::Role;
    user(&*store, "jake").await;
    user(&*store, "anna").await;
    // Another admin, so that jake is not the last one when he is deactivated.
    store
        .set_account(&username("anna"), &AccountChanges { role: Some(Role::Admin), active: None, by: None })
        .await
        .unwrap()
        .unwrap();
    let admin = store
        .set_account(&username("jake"), &AccountChanges { role: Some(Role::Admin), active: None, by: None })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((admin.role, admin.active, admin.token_version), (Role::Admin, true, 0));
    let off = store
        .set_account(&username("jake"), &AccountChanges { active: Some(false), ..Default::default() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((off.role, off.active, off.token_version), (Role::Admin, false, 1));
    // Deactivating again revokes nothing new; reactivating keeps old tokens revoked.
    let again = store
        .set_account(&username("jake"), &AccountChanges { active: Some(false), ..Default::default() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.token_version, 1);
    let on = store
        .set_account(&username("jake"), &AccountChanges { active: Some(true), role: Some(Role::User), by: None })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((on.role, on.active, on.token_version), (Role::User, true, 1));
    assert!(store.set_account(&username("nobody"), &AccountChanges::default()).await.unwrap().is_none());
}

pub async fn user_update_to_taken_name_conflicts_and_changes_nothing(store: TestStore) {
    let jake = user(&*store, "jake").await;
    user(&*store, "celeb").await;
    let changes = UserChanges {
        username: Some(username("celeb")),
        bio: Some(Some("should not stick".into())),
        ..Default::default()
    };
    assert!(matches!(store.update_user(jake.id, &changes).await, Err(DbError::Conflict("username"))));
    assert_eq!(store.user_by_id(jake.id).await.unwrap(), Some(jake));
}

pub async fn follow_and_unfollow_are_idempotent(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let celeb = user(&*store, "celeb").await;
    let seen = store.profile(&username("celeb"), Some(jake.id)).await.unwrap().unwrap();
    assert!(!seen.following);

    for _ in 0..2 {
        let p = store.follow(jake.id, &username("celeb")).await.unwrap().unwrap();
        assert!(p.following);
        assert_eq!(p.username, "celeb");
    }
    assert!(store.profile(&username("celeb"), Some(jake.id)).await.unwrap().unwrap().following);
    assert!(!store.profile(&username("celeb"), None).await.unwrap().unwrap().following);
    assert!(!store.profile(&username("jake"), Some(celeb.id)).await.unwrap().unwrap().following);

    for _ in 0..2 {
        assert!(!store.unfollow(jake.id, &username("celeb")).await.unwrap().unwrap().following);
    }
    assert!(store.follow(jake.id, &username("nobody")).await.unwrap().is_none());
    assert!(store.unfollow(jake.id, &username("nobody")).await.unwrap().is_none());
    assert!(store.profile(&username("nobody"), None).await.unwrap().is_none());
}

pub async fn article_round_trips_with_tags_in_order(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let created = article(&*store, &jake, "How to train your dragon", &["dragons", "angular", "zoo"]).await;
    assert_eq!(created.slug, "how-to-train-your-dragon");
    assert_eq!(created.tag_list, ["dragons", "angular", "zoo"]);
    assert_eq!(created.body.as_deref(), Some("body of How to train your dragon"));
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!((created.favorited, created.favorites_count), (false, 0));
    assert_eq!(created.author.username, "jake");

    let fetched = store.article(&slug(&created.slug), None).await.unwrap().unwrap();
    assert_eq!(fetched, created);
    let by_ref = store.article_ref(&slug(&created.slug)).await.unwrap().unwrap();
    assert_eq!(by_ref, ArticleRef { id: created.id, author: jake.id, hidden: false, title: created.title.clone() });
    assert!(store.article(&slug("no-such-slug"), None).await.unwrap().is_none());
    assert!(store.article_ref(&slug("no-such-slug")).await.unwrap().is_none());
}

pub async fn taken_slug_is_a_conflict_and_unique_slug_helper_avoids_it(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let first = article(&*store, &jake, "Same title", &[]).await;
    let again = store.create_article(jake.id, &slug(&first.slug), &new_article("Same title", &["x"]), None).await;
    assert!(matches!(again, Err(DbError::Conflict("slug"))));
    // The refused insert left nothing behind, not even its tag.
    assert!(store.tags().await.unwrap().is_empty());

    let second = article(&*store, &jake, "Same title", &[]).await;
    assert_ne!(first.slug, second.slug);
    assert!(second.slug.starts_with("same-title-"));
}

pub async fn listing_is_newest_first_counts_all_and_omits_bodies(store: TestStore) {
    let jake = user(&*store, "jake").await;
    for i in 1..=5 {
        article(&*store, &jake, &format!("Post {i}"), &["t"]).await;
    }
    let page = store.list_articles(&query(), None).await.unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(slugs(&page), ["post-5", "post-4", "post-3", "post-2", "post-1"]);
    assert!(page.items.iter().all(|a| a.body.is_none()));
    assert!(page.items.iter().all(|a| a.tag_list == ["t"]));

    let q = ArticleQuery { page: Paging { limit: 2, offset: 1, cursor: None }, ..query() };
    let page = store.list_articles(&q, None).await.unwrap();
    assert_eq!((slugs(&page), page.total), (vec!["post-4", "post-3"], 5));

    let q = ArticleQuery { page: Paging { limit: 2, offset: 10, cursor: None }, ..query() };
    let page = store.list_articles(&q, None).await.unwrap();
    assert_eq!((page.items.len(), page.total), (0, 5));
}

pub async fn listing_filters_by_tag_author_favorited_and_combinations(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let j1 = article(&*store, &jake, "j1", &["rust", "web"]).await;
    let a1 = article(&*store, &anna, "a1", &["rust"]).await;
    article(&*store, &anna, "a2", &["go"]).await;
    store.favorite(anna.id, &slug(&j1.slug)).await.unwrap();
    store.favorite(anna.id, &slug(&a1.slug)).await.unwrap();

    let list = |tag: Option<&str>, author: Option<&str>, favorited: Option<&str>| {
        let store = store.clone();
        let q = ArticleQuery {
            tag: tag.map(Into::into),
            author: author.map(username),
            favorited: favorited.map(username),
            search: None,
            page: Paging::default(),
            skip_blocked: false,
        };
        async move {
            let page = store.list_articles(&q, Some(anna.id)).await.unwrap();
            assert_eq!(page.total as usize, page.items.len());
            page.items.into_iter().map(|a| a.slug).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(Some("rust"), None, None).await, ["a1", "j1"]);
    assert_eq!(list(None, Some("anna"), None).await, ["a2", "a1"]);
    assert_eq!(list(None, None, Some("anna")).await, ["a1", "j1"]);
    assert_eq!(list(Some("rust"), Some("anna"), None).await, ["a1"]);
    assert_eq!(list(Some("web"), None, Some("anna")).await, ["j1"]);
    assert_eq!(list(Some("go"), Some("anna"), Some("anna")).await, Vec::<String>::new());
    assert_eq!(list(Some("rust"), Some("jake"), Some("anna")).await, ["j1"]);
    assert!(list(Some("nope"), None, None).await.is_empty());
    assert!(list(None, Some("nobody"), None).await.is_empty());
    assert!(list(None, None, Some("nobody")).await.is_empty());

    // A page of a combined listing counts every match, past its end too.
    let paged = |offset| ArticleQuery {
        tag: Some("rust".into()),
        author: None,
        favorited: Some(username("anna")),
        search: None,
        page: Paging { limit: 1, offset, cursor: None },
        skip_blocked: false,
    };
    let page = store.list_articles(&paged(1), Some(anna.id)).await.unwrap();
    assert_eq!((page.total, page.items.iter().map(|a| a.slug.as_str()).collect::<Vec<_>>()), (2, vec!["j1"]));
    assert!(page.items[0].favorited && page.items[0].body.is_none());
    let page = store.list_articles(&paged(5), None).await.unwrap();
    assert_eq!((page.total, page.items.len()), (2, 0));

    // The viewer's own flags come with each listed article.
    let page = store
        .list_articles(&ArticleQuery { favorited: Some(username("anna")), ..query() }, Some(anna.id))
        .await
        .unwrap();
    assert!(page.items.iter().all(|a| a.favorited && a.favorites_count == 1));
    let page = store.list_articles(&ArticleQuery { favorited: Some(username("anna")), ..query() }, None).await.unwrap();
    assert!(page.items.iter().all(|a| !a.favorited && a.favorites_count == 1));

    // Each filter drives a combination in turn: the one with the fewest matches.
    let bob = user(&*store, "bob").await;
    store.favorite(bob.id, &slug(&a1.slug)).await.unwrap();
    assert_eq!(list(Some("rust"), None, Some("bob")).await, ["a1"], "bob's one favorite drives");
    assert_eq!(list(Some("rust"), Some("anna"), Some("bob")).await, ["a1"]);
    assert_eq!(list(Some("go"), Some("jake"), None).await, Vec::<String>::new(), "the tag drives");
}

/// Walks a listing a page at a time twice, by cursor (each page starting past the last item of
/// the one before) and by offset (each page skipping what the pages before served), asserts
/// that both walks see the same items in the same order, and returns their ids.
async fn walk<T, F, Fut>(mut page_of: F, id_of: impl Fn(&T) -> i64) -> Vec<i64>
where
    F: FnMut(Paging) -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    let (mut by_cursor, mut cursor) = (Vec::new(), None);
    loop {
        let items = page_of(Paging { limit: 2, offset: 0, cursor }).await;
        by_cursor.extend(items.iter().map(&id_of));
        match items.last() {
            Some(last) if items.len() == 2 => cursor = Some(id_of(last)),
            _ => break,
        }
    }
    let mut by_offset: Vec<i64> = Vec::new();
    loop {
        let items = page_of(Paging { limit: 2, offset: by_offset.len() as i64, cursor: None }).await;
        by_offset.extend(items.iter().map(&id_of));
        assert!(by_offset.len() <= by_cursor.len(), "paging by offset serves more than the listing holds");
        if items.len() < 2 {
            break;
        }
    }
    assert_eq!(by_cursor, by_offset, "by cursor and by offset");
    by_cursor
}

/// The ids of a listing's articles, in one page.
async fn every_listed_id(store: &TestStore, q: ArticleQuery) -> Vec<i64> {
    let q = ArticleQuery { page: Paging { limit: 100, ..Paging::default() }, ..q };
    store.list_articles(&q, None).await.unwrap().items.iter().map(|a| a.id.get()).collect()
}

/// That walking the listing by its cursor, and by offset, finds what one page of it lists, and
/// that each page counts the whole listing.
async fn assert_walks_as_it_lists(store: &TestStore, q: ArticleQuery) {
    let all = every_listed_id(store, q.clone()).await;
    let walked = walk(
        |page| {
            let (store, q) = (store.clone(), ArticleQuery { page, ..q.clone() });
            async move { store.list_articles(&q, None).await.unwrap().items }
        },
        |a| a.id.get(),
    )
    .await;
    assert_eq!(walked, all, "{q:?}");
    assert!(!all.is_empty());
    // The count is of the whole listing, whichever page is asked for.
    let deep = ArticleQuery { page: Paging { limit: 2, offset: 0, cursor: all.get(2).copied() }, ..q.clone() };
    assert_eq!(store.list_articles(&deep, None).await.unwrap().total, all.len() as i64, "{q:?}");
}

pub async fn every_listing_pages_by_cursor_as_it_does_by_offset(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let (mut ids, mut anna_ids) = (Vec::new(), Vec::new());
    for i in 0..7 {
        let author = if i % 2 == 0 { &jake } else { &anna };
        let article = article(&*store, author, &format!("Post {i}"), &["t"]).await;
        store.favorite(anna.id, &slug(&article.slug)).await.unwrap();
        ids.insert(0, article.id.get());
        if i % 2 == 1 {
            anna_ids.insert(0, article.id.get());
        }
    }
    let queries = [
        query(),
        ArticleQuery { tag: Some("t".into()), ..query() },
        ArticleQuery { author: Some(username("jake")), ..query() },
        ArticleQuery { favorited: Some(username("anna")), ..query() },
        ArticleQuery { tag: Some("t".into()), favorited: Some(username("anna")), ..query() },
    ];
    for q in queries {
        assert_walks_as_it_lists(&store, q).await;
    }
    assert_eq!(every_listed_id(&store, query()).await, ids);

    store.follow(jake.id, &username("anna")).await.unwrap();
    let feed = walk(
        |page| {
            let store = store.clone();
            async move { store.feed(jake.id, page).await.unwrap().items }
        },
        |a| a.id.get(),
    )
    .await;
    assert_eq!(feed, anna_ids, "the feed: anna's posts, newest first");

    let first = store.list_articles(&query(), None).await.unwrap().items[0].id;
    for i in 0..5 {
        store.create_comment(first, jake.id, &format!("c{i}"), None).await.unwrap();
    }
    let comments = walk(
        |page| {
            let store = store.clone();
            async move { store.comments(first, None, page).await.unwrap() }
        },
        |c| c.id.get(),
    )
    .await;
    assert_eq!(comments.len(), 5);
    assert!(comments.windows(2).all(|w| w[0] < w[1]), "oldest first: {comments:?}");

    let users = walk(
        |page| {
            let store = store.clone();
            async move { store.list_users(None, page).await.unwrap().items }
        },
        |u| u.id.get(),
    )
    .await;
    assert_eq!(users, [jake.id.get(), anna.id.get()]);
}

pub async fn combined_filters_walk_the_narrowest_and_refuse_when_every_one_is_too_broad(store: TestStore) {
    let prolific = user(&*store, "prolific").await;
    let typical = user(&*store, "typical").await;
    let big = (crate::MAX_COMBINED_SCAN + 1) as usize;
    let articles: Vec<SeedArticle> = (0..big)
        .map(|n| SeedArticle {
            author: prolific.id,
            slug: slug(&format!("p-{n}")),
            article: new_article(&format!("P {n}"), &["common"]),
            created_at: chrono::Utc::now(),
            favorited_by: vec![],
            comments: vec![],
        })
        .collect();
    store.seed_articles(&articles).await.unwrap();
    article(&*store, &typical, "mine", &["common", "rare"]).await;
    let list = |tag: &str, author: &str| {
        let q = ArticleQuery { tag: Some(tag.into()), author: Some(username(author)), ..query() };
        let store = store.clone();
        async move { store.list_articles(&q, None).await }
    };
    // Both filters match more than the bound: refused, not walked.
    assert!(matches!(list("common", "prolific").await, Err(DbError::TooBroad)));
    // One narrow filter is enough: the typical author's one article, or the rare tag's.
    let page = list("common", "typical").await.unwrap();
    assert_eq!((page.total, slugs(&page)), (1, vec!["mine"]));
    let page = list("rare", "typical").await.unwrap();
    assert_eq!((page.total, slugs(&page)), (1, vec!["mine"]));
    assert_eq!(list("rare", "prolific").await.unwrap().total, 0, "the rare tag drives past the prolific author");
}

/// `n` users made in bulk (`seed_users`, 2,000 at a time), named and addressed by `name(i)`.
async fn bulk_users(store: &TestStore, n: usize, name: impl Fn(usize) -> (String, String)) {
    let users: Vec<NewUser> = (0..n)
        .map(|i| {
            let (name, address) = name(i);
            NewUser {
                username: username(&name),
                email: email(&address),
                password_hash: "a password hash of a realistic length, to size the rows".into(),
            }
        })
        .collect();
    for chunk in users.chunks(2000) {
        store.seed_users(chunk).await.unwrap();
    }
}

/// A table filled in bulk has no planner statistics until `analyze` (then the planner picked
/// plans measured 30 times slower on PostgreSQL); `unanalyzed_tables` tells which.
pub async fn a_bulk_load_is_unanalyzed_until_analyze(store: TestStore) {
    assert!(store.unanalyzed_tables().await.unwrap().is_empty(), "an empty database needs nothing");
    bulk_users(&store, 12_000, |i| (format!("bulk{i}"), format!("bulk{i}@example.com"))).await;
    assert_eq!(store.unanalyzed_tables().await.unwrap(), ["users"]);
    store.analyze().await.unwrap();
    assert!(store.unanalyzed_tables().await.unwrap().is_empty());
}

/// Of several instances claiming one scheduled backup at once, exactly one gets it; the admins
/// to tell of a failure are the active ones.
pub async fn a_backup_slot_is_claimed_once_and_admins_are_told(store: TestStore) {
    let claims = (0..8).map(|i| {
        let store = store.clone();
        async move { store.claim_backup_slot(42, &format!("instance {i}"), 1).await.unwrap() }
    });
    let won = futures::future::join_all(claims).await.into_iter().filter(|won| *won).count();
    assert_eq!(won, 1, "one claim of eight wins");
    assert!(store.claim_backup_slot(43, "instance 0", 2).await.unwrap(), "the next slot is free");
    assert!(!store.claim_backup_slot(42, "late", 3).await.unwrap());

    for name in ["boss", "former", "plain"] {
        user(&*store, name).await;
    }
    let admin = AccountChanges { role: Some(conduit_domain::model::Role::Admin), ..Default::default() };
    store.set_account(&username("boss"), &admin).await.unwrap();
    store.set_account(&username("former"), &admin).await.unwrap();
    store
        .set_account(&username("former"), &AccountChanges { active: Some(false), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(store.admin_emails().await.unwrap(), ["boss@example.com"]);
}

pub async fn seeded_data_reads_like_data_written_one_call_at_a_time(store: TestStore) {
    let new = |name: &str| NewUser {
        username: username(name),
        email: email(&format!("{name}@example.com")),
        password_hash: "h".into(),
    };
    let ids = store.seed_users(&[new("s1"), new("s2"), new("s3")]).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(store.user_by_id(ids[1]).await.unwrap().unwrap().username, "s2");
    store.seed_follows(&[(ids[0], ids[1]), (ids[0], ids[2]), (ids[0], ids[1])]).await.unwrap();
    let seeded = |n: usize, favorited_by: Vec<UserId>| SeedArticle {
        author: ids[n % 2 + 1],
        slug: slug(&format!("seeded-{n}")),
        article: new_article(&format!("Seeded {n}"), &["b", "a"]),
        created_at: chrono::Utc::now(),
        favorited_by,
        comments: vec![(ids[0], format!("on {n}"))],
    };
    store.seed_articles(&[seeded(0, vec![ids[0], ids[1]]), seeded(1, vec![]), seeded(2, vec![ids[2]])]).await.unwrap();

    let page = store.list_articles(&query(), Some(ids[0])).await.unwrap();
    assert_eq!((page.total, slugs(&page)), (3, vec!["seeded-2", "seeded-1", "seeded-0"]));
    let first = store.article(&slug("seeded-0"), Some(ids[0])).await.unwrap().unwrap();
    assert_eq!(
        (first.favorites_count, first.favorited, first.tag_list.clone()),
        (2, true, vec!["b".to_owned(), "a".to_owned()])
    );
    assert!(first.author.following, "s1 follows the author");
    let comments = store.comments(first.id, None, Paging::default()).await.unwrap();
    assert_eq!(comments.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(), ["on 0"]);
    assert_eq!(store.feed(ids[0], Paging::default()).await.unwrap().total, 3);
    assert_eq!(store.tags().await.unwrap(), ["a", "b"]);
    // Favorites written in bulk count like any other.
    store.favorite(ids[2], &slug("seeded-0")).await.unwrap();
    assert_eq!(store.article(&slug("seeded-0"), None).await.unwrap().unwrap().favorites_count, 3);
}

/// Every listing's count against the listing itself, counted here.
async fn assert_counts_hold(store: &TestStore, viewer: UserId, when: &str) {
    let all = Paging { limit: 100, ..Paging::default() };
    let queries = [
        query(),
        ArticleQuery { tag: Some("a".into()), ..query() },
        ArticleQuery { tag: Some("b".into()), ..query() },
        ArticleQuery { author: Some(username("jake")), ..query() },
        ArticleQuery { favorited: Some(username("anna")), ..query() },
        ArticleQuery { author: Some(username("nobody")), ..query() },
    ];
    for q in queries {
        let page = store.list_articles(&ArticleQuery { page: all, ..q.clone() }, None).await.unwrap();
        assert_eq!(page.total, page.items.len() as i64, "{when}: {q:?}");
    }
    let feed = store.feed(viewer, all).await.unwrap();
    assert_eq!(feed.total, feed.items.len() as i64, "{when}: the feed");
    let listed: Vec<String> = store
        .list_articles(&ArticleQuery { page: all, ..query() }, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .flat_map(|a| a.tag_list)
        .collect();
    for tag in store.tags().await.unwrap() {
        assert!(listed.contains(&tag), "{when}: tag {tag} is listed but on no article");
    }
}

pub async fn maintained_counts_follow_every_write(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    store.follow(anna.id, &username("jake")).await.unwrap();
    assert_counts_hold(&store, anna.id, "empty").await;
    let a1 = article(&*store, &jake, "one", &["a", "b"]).await;
    let a2 = article(&*store, &jake, "two", &["a"]).await;
    let a3 = article(&*store, &anna, "three", &["b"]).await;
    assert_counts_hold(&store, anna.id, "created").await;
    store.favorite(anna.id, &slug(&a1.slug)).await.unwrap();
    store.favorite(anna.id, &slug(&a3.slug)).await.unwrap();
    store.favorite(anna.id, &slug(&a3.slug)).await.unwrap();
    assert_counts_hold(&store, anna.id, "favorited").await;
    store.unfavorite(anna.id, &slug(&a1.slug)).await.unwrap();
    assert_counts_hold(&store, anna.id, "unfavorited").await;
    let retag = ArticleChanges { tags: Some(vec!["b".into()]), ..ArticleChanges::default() };
    store.update_article(a2.id, jake.id, &slug(&a2.slug), None, &retag).await.unwrap().unwrap();
    assert_counts_hold(&store, anna.id, "retagged").await;
    assert!(store.delete_article(a3.id, anna.id).await.unwrap());
    assert_counts_hold(&store, anna.id, "deleted").await;
    assert!(store.delete_article(a1.id, jake.id).await.unwrap());
    assert!(store.delete_article(a2.id, jake.id).await.unwrap());
    assert_counts_hold(&store, anna.id, "all deleted").await;
    assert!(store.tags().await.unwrap().is_empty(), "no article, no tag");
}

pub async fn the_tags_version_grows_with_every_change_to_tags(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let v0 = store.tags_version().await.unwrap();
    let a = article(&*store, &jake, "one", &["a", "b"]).await;
    let v1 = store.tags_version().await.unwrap();
    assert!(v1 > v0, "new tags");
    store.favorite(jake.id, &slug(&a.slug)).await.unwrap();
    assert_eq!(store.tags_version().await.unwrap(), v1, "a favorite changes no tag");
    let retag = ArticleChanges { tags: Some(vec!["c".into()]), ..ArticleChanges::default() };
    store.update_article(a.id, jake.id, &slug(&a.slug), None, &retag).await.unwrap().unwrap();
    let v2 = store.tags_version().await.unwrap();
    assert!(v2 > v1, "retagged");
    assert_eq!(store.tags().await.unwrap(), ["c"]);
    assert!(store.delete_article(a.id, jake.id).await.unwrap());
    assert!(store.tags_version().await.unwrap() > v2, "deleted with its tags");
    assert!(store.tags().await.unwrap().is_empty());
}

pub async fn feed_holds_followed_authors_only(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let bob = user(&*store, "bob").await;
    article(&*store, &anna, "a1", &[]).await;
    article(&*store, &bob, "b1", &[]).await;
    article(&*store, &anna, "a2", &[]).await;

    let feed = store.feed(jake.id, Paging::default()).await.unwrap();
    assert_eq!((feed.items.len(), feed.total), (0, 0));

    store.follow(jake.id, &username("anna")).await.unwrap();
    let feed = store.feed(jake.id, Paging::default()).await.unwrap();
    assert_eq!((slugs(&feed), feed.total), (vec!["a2", "a1"], 2));
    assert!(feed.items.iter().all(|a| a.author.following && a.body.is_none()));

    let feed = store.feed(jake.id, Paging { limit: 1, offset: 1, cursor: None }).await.unwrap();
    assert_eq!((slugs(&feed), feed.total), (vec!["a1"], 2));
}

pub async fn update_keeps_or_replaces_tags_and_renames_slug(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let a = article(&*store, &jake, "Original", &["a", "b"]).await;

    let changes = ArticleChanges { body: Some("new body".into()), ..Default::default() };
    let u = store.update_article(a.id, jake.id, &slug(&a.slug), None, &changes).await.unwrap().unwrap();
    assert_eq!((u.body.as_deref(), u.tag_list.clone()), (Some("new body"), vec!["a".into(), "b".into()]));
    assert_eq!((u.slug.as_str(), u.created_at), ("original", a.created_at));
    assert!(u.updated_at > a.updated_at);

    let changes = ArticleChanges { tags: Some(vec!["c".into(), "a".into()]), ..Default::default() };
    let u = store.update_article(a.id, jake.id, &slug(&a.slug), None, &changes).await.unwrap().unwrap();
    assert_eq!(u.tag_list, ["c", "a"]);

    let changes = ArticleChanges { tags: Some(vec![]), ..Default::default() };
    let u = store.update_article(a.id, jake.id, &slug(&a.slug), None, &changes).await.unwrap().unwrap();
    assert!(u.tag_list.is_empty());

    let changes =
        ArticleChanges { title: Some("Renamed".into()), description: Some("d2".into()), ..Default::default() };
    let u =
        store.update_article(a.id, jake.id, &slug(&a.slug), Some(&slug("renamed")), &changes).await.unwrap().unwrap();
    assert_eq!((u.slug.as_str(), u.title.as_str(), u.description.as_str()), ("renamed", "Renamed", "d2"));
    assert!(store.article(&slug("original"), None).await.unwrap().is_none());
    assert_eq!(store.article(&slug("renamed"), None).await.unwrap().unwrap(), u);

    // An edit made against the old slug finds nothing: a concurrent rename won.
    let stale = ArticleChanges { title: Some("Original".into()), ..Default::default() };
    assert!(store.update_article(a.id, jake.id, &slug(&a.slug), None, &stale).await.unwrap().is_none());
    assert_eq!(store.article(&slug("renamed"), None).await.unwrap().unwrap(), u);
}

pub async fn failed_update_changes_nothing(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let taken = article(&*store, &jake, "Taken", &[]).await;
    let a = article(&*store, &jake, "Mine", &["keep"]).await;
    let changes = ArticleChanges {
        title: Some("Taken".into()),
        body: Some("lost".into()),
        tags: Some(vec!["lost".into()]),
        ..Default::default()
    };
    let result = store.update_article(a.id, jake.id, &slug(&a.slug), Some(&slug(&taken.slug)), &changes).await;
    assert!(matches!(result, Err(DbError::Conflict("slug"))), "{result:?}");
    assert_eq!(store.article(&slug(&a.slug), None).await.unwrap().unwrap(), a);
    assert_eq!(store.tags().await.unwrap(), ["keep"]);
}

pub async fn only_the_author_updates_or_deletes(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let a = article(&*store, &jake, "Mine", &["t"]).await;
    let changes = ArticleChanges { body: Some("hijacked".into()), ..Default::default() };
    assert!(store.update_article(a.id, anna.id, &slug(&a.slug), None, &changes).await.unwrap().is_none());
    assert!(!store.delete_article(a.id, anna.id).await.unwrap());
    assert_eq!(store.article(&slug(&a.slug), None).await.unwrap().unwrap(), a);
}

pub async fn delete_cascades_to_tags_favorites_and_comments(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let a = article(&*store, &jake, "Doomed", &["gone"]).await;
    let keep = article(&*store, &jake, "Kept", &["kept"]).await;
    store.favorite(anna.id, &slug(&a.slug)).await.unwrap();
    store.create_comment(a.id, anna.id, "nice", None).await.unwrap();

    assert!(store.delete_article(a.id, jake.id).await.unwrap());
    assert!(!store.delete_article(a.id, jake.id).await.unwrap());
    assert!(store.article(&slug(&a.slug), None).await.unwrap().is_none());
    assert_eq!(store.tags().await.unwrap(), ["kept"]);
    assert!(store.comments(a.id, None, Paging::default()).await.unwrap().is_empty());
    let favorited =
        store.list_articles(&ArticleQuery { favorited: Some(username("anna")), ..query() }, None).await.unwrap();
    assert_eq!(favorited.total, 0);
    assert!(store.article(&slug(&keep.slug), None).await.unwrap().is_some());
}

pub async fn favorites_are_idempotent_and_counted(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let a = article(&*store, &jake, "Liked", &[]).await;
    for _ in 0..2 {
        let f = store.favorite(anna.id, &slug(&a.slug)).await.unwrap().unwrap();
        assert_eq!((f.favorited, f.favorites_count), (true, 1));
    }
    let f = store.favorite(jake.id, &slug(&a.slug)).await.unwrap().unwrap();
    assert_eq!((f.favorited, f.favorites_count), (true, 2));
    let seen = store.article(&slug(&a.slug), None).await.unwrap().unwrap();
    assert_eq!((seen.favorited, seen.favorites_count), (false, 2));
    for _ in 0..2 {
        let f = store.unfavorite(anna.id, &slug(&a.slug)).await.unwrap().unwrap();
        assert_eq!((f.favorited, f.favorites_count), (false, 1));
    }
    assert!(store.favorite(anna.id, &slug("nope")).await.unwrap().is_none());
    assert!(store.unfavorite(anna.id, &slug("nope")).await.unwrap().is_none());
}

pub async fn comments_are_listed_oldest_first_and_deleted_by_author_only(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let a = article(&*store, &jake, "Talk", &[]).await;
    let other = article(&*store, &jake, "Elsewhere", &[]).await;
    let c1 = store.create_comment(a.id, anna.id, "first", None).await.unwrap();
    let c2 = store.create_comment(a.id, jake.id, "second", None).await.unwrap();
    assert_eq!((c1.body.as_str(), c1.author.username.as_str()), ("first", "anna"));

    store.follow(jake.id, &username("anna")).await.unwrap();
    let listed = store.comments(a.id, Some(jake.id), Paging::default()).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), [c1.id, c2.id]);
    assert!(listed[0].author.following && !listed[1].author.following);
    assert!(store.comments(other.id, None, Paging::default()).await.unwrap().is_empty());

    assert_eq!(store.comment_author(a.id, c1.id).await.unwrap(), Some(anna.id));
    assert_eq!(store.comment_author(other.id, c1.id).await.unwrap(), None);
    assert!(!store.delete_comment(c1.id, jake.id).await.unwrap());
    assert!(store.delete_comment(c1.id, anna.id).await.unwrap());
    let listed = store.comments(a.id, None, Paging::default()).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), [c2.id]);
}

pub async fn tags_are_listed_most_used_first(store: TestStore) {
    let jake = user(&*store, "jake").await;
    assert!(store.tags().await.unwrap().is_empty());
    article(&*store, &jake, "a", &["rare", "common"]).await;
    article(&*store, &jake, "b", &["common"]).await;
    assert_eq!(store.tags().await.unwrap(), ["common", "rare"]);
}

pub async fn sessions_are_stored_replaced_expired_and_deleted(store: TestStore) {
    let now = 1_800_000_000;
    assert!(store.session_create("s1", "{\"a\":1}", now + 60).await.unwrap());
    assert!(!store.session_create("s1", "other", now + 60).await.unwrap(), "ids are unique");
    assert_eq!(store.session_load("s1", now).await.unwrap().as_deref(), Some("{\"a\":1}"));
    store.session_save("s1", "{\"a\":2}", now + 120).await.unwrap();
    store.session_save("s2", "{}", now + 10).await.unwrap();
    assert_eq!(store.session_load("s1", now + 100).await.unwrap().as_deref(), Some("{\"a\":2}"));
    assert_eq!(store.session_load("s2", now + 10).await.unwrap(), None, "expired at its expiry time");
    assert_eq!(store.session_delete_expired(now + 50).await.unwrap(), 1);
    store.session_delete("s1").await.unwrap();
    assert_eq!(store.session_load("s1", now).await.unwrap(), None);
    assert_eq!(store.session_load("nope", now).await.unwrap(), None);
}

pub async fn concurrent_registrations_of_one_name_give_one_user(store: TestStore) {
    let attempts = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create_user(
                    &NewUser {
                        username: username("racer"),
                        email: email(&format!("racer{i}@example.com")),
                        password_hash: "h".into(),
                    },
                    &Outgoing::default(),
                )
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let conflicts = results.iter().filter(|r| matches!(r, Ok(Err(DbError::Conflict("username"))))).count();
    assert_eq!((created, conflicts), (1, 19), "{results:?}");
}

pub async fn concurrent_favorites_are_all_counted(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let a = article(&*store, &jake, "Popular", &[]).await;
    let mut fans = Vec::new();
    for i in 0..50 {
        fans.push(user(&*store, &format!("fan{i}")).await);
    }
    let favs = fans.into_iter().map(|fan| {
        let store = store.clone();
        let slug = slug(&a.slug);
        tokio::spawn(async move { store.favorite(fan.id, &slug).await })
    });
    for result in futures::future::join_all(favs).await {
        result.unwrap().unwrap().unwrap();
    }
    assert_eq!(store.article(&slug(&a.slug), None).await.unwrap().unwrap().favorites_count, 50);
}

pub async fn the_last_active_admin_is_never_demoted_or_deactivated(store: TestStore) {
    use conduit_domain::model::Role;
    user(&*store, "jake").await;
    user(&*store, "anna").await;
    let promote = AccountChanges { role: Some(Role::Admin), active: None, by: None };
    store.set_account(&username("jake"), &promote).await.unwrap().unwrap();
    for last in [
        AccountChanges { role: Some(Role::User), active: None, by: None },
        AccountChanges { role: None, active: Some(false), by: None },
        AccountChanges { role: Some(Role::Admin), active: Some(false), by: None },
    ] {
        assert!(matches!(store.set_account(&username("jake"), &last).await, Err(DbError::LastAdmin)), "{last:?}");
    }
    let jake = store.credentials_by_email(&email("jake@example.com")).await.unwrap().unwrap().user;
    assert_eq!((jake.role, jake.active, jake.token_version), (Role::Admin, true, 0), "nothing changed");
    // Changes that keep him an active admin, and changes to others, go through.
    store
        .set_account(&username("jake"), &AccountChanges { role: Some(Role::Admin), active: Some(true), by: None })
        .await
        .unwrap()
        .unwrap();
    store
        .set_account(&username("anna"), &AccountChanges { role: None, active: Some(false), by: None })
        .await
        .unwrap()
        .unwrap();
    // With a second active admin, the first may step down.
    store
        .set_account(&username("anna"), &AccountChanges { role: Some(Role::Admin), active: Some(true), by: None })
        .await
        .unwrap()
        .unwrap();
    store
        .set_account(&username("jake"), &AccountChanges { role: Some(Role::User), active: None, by: None })
        .await
        .unwrap()
        .unwrap();
}

pub async fn concurrent_demotions_of_two_admins_leave_one(store: TestStore) {
    use conduit_domain::model::Role;
    let admin = AccountChanges { role: Some(Role::Admin), active: None, by: None };
    let demote = AccountChanges { role: Some(Role::User), active: None, by: None };
    let mut survivor: Option<String> = None;
    for round in 0..10 {
        // Exactly two active admins, a and b, then each is demoted at the same time.
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        for name in [&a, &b] {
            user(&*store, name).await;
            store.set_account(&username(name), &admin).await.unwrap().unwrap();
        }
        if let Some(previous) = survivor.take() {
            store.set_account(&username(&previous), &demote).await.unwrap().unwrap();
        }
        let (name_a, name_b) = (username(&a), username(&b));
        let (one, two) = tokio::join!(store.set_account(&name_a, &demote), store.set_account(&name_b, &demote));
        let refused = [&one, &two].iter().filter(|r| matches!(r, Err(DbError::LastAdmin))).count();
        assert_eq!(refused, 1, "round {round}: exactly one demotion must be refused: {one:?} {two:?}");
        let kept = if one.is_ok() { b } else { a };
        let users = store.list_users(Some(true), Paging { limit: 100, offset: 0, cursor: None }).await.unwrap();
        let admins: Vec<_> = users.items.into_iter().filter(|u| u.role == Role::Admin).map(|u| u.username).collect();
        assert_eq!(admins, vec![kept.clone()], "round {round}");
        survivor = Some(kept);
    }
}

pub async fn ended_sessions_are_kept_on_the_user_until_they_expire(store: TestStore) {
    let jake = user(&*store, "jake").await;
    assert!(jake.ended_sessions.is_empty());
    let now = chrono::Utc::now().timestamp();
    assert!(store.end_session_tokens(jake.id, "s1", now + 3600).await.unwrap());
    assert!(store.end_session_tokens(jake.id, "s2", now - 1).await.unwrap(), "already expired: not kept");
    assert!(store.end_session_tokens(jake.id, "s3", now + 3600).await.unwrap());
    let read = store.user_by_id(jake.id).await.unwrap().unwrap();
    assert_eq!(read.ended_sessions, vec!["s1".to_owned(), "s3".to_owned()]);
    assert_eq!(read.token_version, 0, "ending a session ends nothing else");
    assert!(!store.end_session_tokens(UserId::new(jake.id.get() + 1000), "s", now + 3600).await.unwrap());

    // A password change ends every token anyway: the list starts over.
    let password = UserChanges { password_hash: Some("new".into()), ..Default::default() };
    let changed = store.update_user(jake.id, &password).await.unwrap().unwrap();
    assert_eq!((changed.token_version, changed.ended_sessions.len()), (1, 0));

    // Past the cap, everything of the user ends instead of the row growing.
    for i in 0..crate::rows::ended_sessions::MAX {
        store.end_session_tokens(jake.id, &format!("s{i}"), now + 3600).await.unwrap();
    }
    store.end_session_tokens(jake.id, "one too many", now + 3600).await.unwrap();
    let read = store.user_by_id(jake.id).await.unwrap().unwrap();
    assert_eq!((read.token_version, read.ended_sessions.len()), (2, 0));
}

// --- the account lifecycle by mail ---

fn mail(kind: &'static str, to: &str) -> Mail {
    Mail { kind, to: to.into(), subject: format!("{kind} subject"), body: format!("{kind} body for {to}") }
}

fn token(selector: &str, purpose: TokenPurpose, email: &str, expires_at: i64) -> NewAccountToken {
    NewAccountToken {
        proven: true,
        selector: selector.into(),
        verifier_hash: format!("hash-{selector}"),
        purpose,
        email: email.into(),
        expires_at,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub async fn mail_is_queued_with_its_change_and_claimed_until_sent(store: TestStore) {
    let later = chrono::Utc::now().timestamp() + 3600;
    let outgoing = Outgoing {
        tokens: vec![token("v1", TokenPurpose::VerifyEmail, "jake@example.com", later)],
        mails: vec![mail("verify", "jake@example.com")],
    };
    let new = NewUser { username: username("jake"), email: email("jake@example.com"), password_hash: "h".into() };
    store.create_user(&new, &outgoing).await.unwrap();
    // A registration that fails writes none of its mail.
    let taken = Outgoing { mails: vec![mail("verify", "other@example.com")], ..Outgoing::default() };
    let again = NewUser { email: email("other@example.com"), ..new.clone() };
    assert!(store.create_user(&again, &taken).await.is_err());

    let now = now_ms();
    let claimed = store.claim_mail(now, now + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        (claimed[0].to.as_str(), claimed[0].kind.as_str(), claimed[0].attempts),
        ("jake@example.com", "verify", 1)
    );
    assert!(store.claim_mail(now, now + 60_000, 10).await.unwrap().is_empty(), "leased: nobody else gets it");
    // The sender died: once its lease ends, the message is due again.
    assert_eq!(store.claim_mail(now + 60_000, now + 120_000, 10).await.unwrap().len(), 1);
    store.mail_failed(claimed[0].id, "connection refused", Some(now), true).await.unwrap();
    let retried = store.claim_mail(now, now + 60_000, 10).await.unwrap();
    assert_eq!(retried[0].attempts, 3);
    store.mail_sent(claimed[0].id, now).await.unwrap();
    assert!(store.claim_mail(now + 1_000_000, now + 2_000_000, 10).await.unwrap().is_empty(), "sent is done");
    let listed = store.list_mail(Some("sent"), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].attempts, listed[0].sent_at), (3, Some(now)));

    // Dead after its last try, until requeued.
    let outgoing = Outgoing { mails: vec![mail("reset", "jake@example.com")], ..Outgoing::default() };
    store.mail_account(&email("jake@example.com"), &outgoing).await.unwrap().unwrap();
    let now = now_ms();
    let claimed = store.claim_mail(now, now + 60_000, 10).await.unwrap();
    store.mail_failed(claimed[0].id, "550 no such user", None, false).await.unwrap();
    assert!(store.claim_mail(now + 1_000_000, now + 2_000_000, 10).await.unwrap().is_empty());
    let dead = store.list_mail(Some("dead"), 10).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such user"));
    assert_eq!(store.retry_mail(None, now, None).await.unwrap(), 1);
    let requeued = store.claim_mail(now, now + 60_000, 10).await.unwrap();
    assert_eq!((requeued.len(), requeued[0].attempts), (1, 1), "a fresh count of attempts");
    assert_eq!(store.retry_mail(Some(listed[0].id), now, None).await.unwrap(), 0, "sent mail is never sent again");
    assert!(store.mail_account(&email("nobody@example.com"), &outgoing).await.unwrap().is_none());
    assert_eq!(store.list_mail(None, 10).await.unwrap().len(), 2, "nothing queued for an unknown address");

    // A dead message that carried a token forgets it, and cannot be sent again.
    let claimed = store.claim_mail(now + 60_000, now + 120_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    store.mail_failed(claimed[0].id, "550 no such user", None, true).await.unwrap();
    let dead = store.list_mail(Some("dead"), 10).await.unwrap();
    assert_eq!(dead[0].body, "", "no token kept");
    assert_eq!(store.retry_mail(None, now, None).await.unwrap(), 0, "nothing left to send");
    assert_eq!(store.retry_mail(Some(dead[0].id), now, None).await.unwrap(), 0);
    assert_eq!(listed[0].body, "", "sent mail keeps no body");

    // Sent mail is deleted after its retention, oldest first, a batch at a time.
    let sent_at = listed[0].sent_at.unwrap();
    assert_eq!(store.prune_mail(sent_at, 10).await.unwrap(), 0, "sent at `sent_at`: not before it");
    assert_eq!(store.prune_mail(sent_at + 1, 10).await.unwrap(), 1);
    assert!(store.list_mail(Some("sent"), 10).await.unwrap().is_empty());
    assert_eq!(store.list_mail(None, 10).await.unwrap().len(), 1, "the dead one stays");
}

pub async fn concurrent_senders_never_claim_one_message_twice(store: TestStore) {
    user(&*store, "jake").await;
    let mails = (0..60).map(|i| mail("notice", &format!("r{i}@example.com"))).collect();
    store.mail_account(&email("jake@example.com"), &Outgoing { mails, ..Outgoing::default() }).await.unwrap();
    let now = now_ms();
    let senders = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_mail(now, now + 60_000, 4).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|m| m.id));
            }
        })
    });
    let mut all: Vec<i64> = futures::future::join_all(senders).await.into_iter().flat_map(Result::unwrap).collect();
    let claimed = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((claimed, all.len()), (60, 60), "every message claimed exactly once");
}

pub async fn tokens_are_single_use_and_bound_to_their_address(store: TestStore) {
    let jake = user(&*store, "jake").await;
    assert!(!jake.email_verified);
    let now = chrono::Utc::now().timestamp();
    let at = "jake@example.com";
    let mail_token = |t: NewAccountToken| Outgoing { tokens: vec![t], mails: vec![] };
    store.mail_account(&email(at), &mail_token(token("v1", TokenPurpose::VerifyEmail, at, now + 60))).await.unwrap();
    let found = store.account_token("v1", TokenPurpose::VerifyEmail).await.unwrap().unwrap();
    assert_eq!((found.user, found.email.as_str()), (jake.id, at));
    assert!(store.account_token("v1", TokenPurpose::ResetPassword).await.unwrap().is_none(), "purpose-bound");
    assert!(store.redeem_token("v1", "wrong", now, &Redeem::VerifyEmail).await.unwrap().is_none());
    let verified = store.redeem_token("v1", "hash-v1", now, &Redeem::VerifyEmail).await.unwrap().unwrap();
    assert!(verified.email_verified);
    assert!(store.redeem_token("v1", "hash-v1", now, &Redeem::VerifyEmail).await.unwrap().is_none(), "single use");

    // A newer reset link ends the older; an expired one does nothing.
    store.mail_account(&email(at), &mail_token(token("r1", TokenPurpose::ResetPassword, at, now + 60))).await.unwrap();
    store.mail_account(&email(at), &mail_token(token("r2", TokenPurpose::ResetPassword, at, now + 60))).await.unwrap();
    let reset = |hash: &str| Redeem::ResetPassword { password_hash: hash.into(), outgoing: Outgoing::default() };
    assert!(store.account_token("r1", TokenPurpose::ResetPassword).await.unwrap().is_none());
    assert!(store.redeem_token("r2", "hash-r2", now + 61, &reset("new")).await.unwrap().is_none(), "expired");
    let reset_user = store.redeem_token("r2", "hash-r2", now, &reset("new")).await.unwrap().unwrap();
    assert_eq!(reset_user.token_version, jake.token_version + 1, "a reset ends every token");
    let credentials = store.credentials_by_email(&email(at)).await.unwrap().unwrap();
    assert_eq!(credentials.password_hash, "new");

    // Any password change ends reset links; an email change unverifies and strands tokens of
    // the old address.
    store.mail_account(&email(at), &mail_token(token("r3", TokenPurpose::ResetPassword, at, now + 60))).await.unwrap();
    let password = UserChanges { password_hash: Some("newer".into()), ..Default::default() };
    store.update_user(jake.id, &password).await.unwrap().unwrap();
    assert!(store.account_token("r3", TokenPurpose::ResetPassword).await.unwrap().is_none());
    store.mail_account(&email(at), &mail_token(token("r4", TokenPurpose::ResetPassword, at, now + 60))).await.unwrap();
    let revert = token("u1", TokenPurpose::RevertEmail, at, now + 60);
    let change = UserChanges {
        email: Some(email("new@example.com")),
        outgoing: Outgoing { tokens: vec![revert], mails: vec![mail("email-changed", at)] },
        ..Default::default()
    };
    let changed = store.update_user(jake.id, &change).await.unwrap().unwrap();
    assert!(!changed.email_verified, "a new address is unverified");
    assert!(store.redeem_token("r4", "hash-r4", now, &reset("x")).await.unwrap().is_none(), "the old address's link");
    let same = UserChanges { email: Some(email("new@example.com")), ..Default::default() };
    assert!(!store.update_user(jake.id, &same).await.unwrap().unwrap().email_verified);

    // The old address undoes the change: it is back, verified, and every token ends.
    let reverted = store
        .redeem_token("u1", "hash-u1", now, &Redeem::RevertEmail { outgoing: Outgoing::default() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((reverted.email.as_str(), reverted.email_verified), (at, true));
    assert_eq!(reverted.token_version, changed.token_version + 1);
}

pub async fn deleted_accounts_take_their_content_or_leave_it_to_a_tombstone(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let bob = user(&*store, "bob").await;
    let a = article(&*store, &jake, "jakes", &["a"]).await;
    let b = article(&*store, &anna, "annas", &["b"]).await;
    let c = article(&*store, &bob, "bobs", &["a", "b"]).await;
    store.favorite(jake.id, &slug(&b.slug)).await.unwrap();
    store.favorite(anna.id, &slug(&a.slug)).await.unwrap();
    store.favorite(bob.id, &slug(&b.slug)).await.unwrap();
    store.follow(jake.id, &username("anna")).await.unwrap();
    store.follow(anna.id, &username("jake")).await.unwrap();
    store.create_comment(b.id, jake.id, "jake was here", None).await.unwrap();
    store.create_comment(a.id, anna.id, "anna was here", None).await.unwrap();

    let articles = store.export_articles(jake.id, None, 10).await.unwrap();
    assert_eq!(articles.iter().map(|a| a.slug.as_str()).collect::<Vec<_>>(), [a.slug.as_str()]);
    assert_eq!(articles[0].body.as_deref(), Some("body of jakes"));
    assert!(store.export_articles(jake.id, Some(articles[0].id.get()), 10).await.unwrap().is_empty());
    let comments = store.export_comments(jake.id, None, 10).await.unwrap();
    assert_eq!((comments.len(), comments[0].article.as_str()), (1, b.slug.as_str()));
    let favorites = store.export_favorites(jake.id, None, 10).await.unwrap();
    assert_eq!(favorites, [(b.id.get(), b.slug.clone())]);
    assert_eq!(store.export_follows(jake.id, None, 10).await.unwrap(), ["anna"]);
    assert!(store.export_follows(jake.id, Some("anna"), 10).await.unwrap().is_empty());

    // A stale version (the password changed meanwhile) deletes nothing.
    assert!(
        !store
            .delete_user(jake.id, jake.token_version + 1, DeletedContent::Delete, &Outgoing::default())
            .await
            .unwrap()
    );
    let goodbye = Outgoing { mails: vec![mail("account-deleted", "jake@example.com")], ..Outgoing::default() };
    assert!(store.delete_user(jake.id, jake.token_version, DeletedContent::Delete, &goodbye).await.unwrap());
    assert!(store.user_by_id(jake.id).await.unwrap().is_none());
    assert!(store.article(&slug(&a.slug), None).await.unwrap().is_none(), "their article went");
    assert_eq!(store.article(&slug(&b.slug), None).await.unwrap().unwrap().favorites_count, 1, "their favorite went");
    assert!(store.comments(b.id, None, Paging::default()).await.unwrap().is_empty(), "their comment went");
    assert!(store.profile(&username("anna"), None).await.unwrap().is_some());
    assert_eq!(store.list_mail(None, 10).await.unwrap()[0].kind, "account-deleted");
    assert_counts_hold(&store, anna.id, "jake deleted").await;
    assert!(store.export_articles(jake.id, None, 10).await.unwrap().is_empty());
    assert!(store.export_comments(jake.id, None, 10).await.unwrap().is_empty());

    // Kept content stays, under the tombstone; the counts follow it.
    assert!(store.delete_user(anna.id, anna.token_version, DeletedContent::Keep, &Outgoing::default()).await.unwrap());
    let kept = store.article(&slug(&b.slug), None).await.unwrap().unwrap();
    assert_eq!(kept.author.username, TOMBSTONE_USERNAME);
    assert_eq!(kept.favorites_count, 1, "bob's favorite stays");
    let all = store
        .list_articles(&ArticleQuery { page: Paging { limit: 100, ..Paging::default() }, ..query() }, None)
        .await
        .unwrap();
    assert_eq!(all.total, 2);
    assert_eq!(store.favorite(bob.id, &slug(&c.slug)).await.unwrap().unwrap().favorites_count, 1);
    assert_counts_hold(&store, bob.id, "anna deleted, content kept").await;
    assert!(store.tags().await.unwrap().contains(&"b".to_owned()));
    // A second kept account reuses the tombstone.
    assert!(store.delete_user(bob.id, bob.token_version, DeletedContent::Keep, &Outgoing::default()).await.unwrap());
    assert_eq!(store.article(&slug(&c.slug), None).await.unwrap().unwrap().author.username, TOMBSTONE_USERNAME);
    assert_eq!(store.list_articles(&query(), None).await.unwrap().total, 2);
}

fn search(raw: &str) -> ArticleQuery {
    ArticleQuery { search: Some(conduit_domain::search::SearchQuery::parse(raw).unwrap()), ..query() }
}

async fn written(
    store: &dyn Store,
    author: &User,
    title: &str,
    description: &str,
    body: &str,
    tags: &[&str],
) -> String {
    let new = NewArticle {
        title: title.into(),
        description: description.into(),
        body: body.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    with_unique_slug(title, |slug| {
        let new = new.clone();
        async move { store.create_article(author.id, &slug, &new, None).await }
    })
    .await
    .expect("create article")
    .slug
}

pub async fn search_ranks_title_then_description_then_phrase_then_the_rest(store: TestStore) {
    let jake = user(&*store, "jake").await;
    // Oldest first: each tier's article is older than the ones below it, so recency alone
    // would put them last.
    let in_title = written(&*store, &jake, "The borrow checker explained", "a tour", "nothing to see", &[]).await;
    let in_description = written(&*store, &jake, "A tour", "what the borrow checker does", "nothing to see", &[]).await;
    let as_phrase = written(&*store, &jake, "Notes", "more notes", "Meet the borrow checker today.", &[]).await;
    let scattered =
        written(&*store, &jake, "Scattered", "more notes", "A checker of things. You may borrow it.", &[]).await;
    let tagged = written(&*store, &jake, "Tagged", "more notes", "The checker.", &["borrow"]).await;
    let unrelated = written(&*store, &jake, "Unrelated", "more notes", "Nothing at all.", &[]).await;

    let found = store.list_articles(&search("borrow checker"), None).await.unwrap();
    assert_eq!(
        slugs(&found),
        [in_title.as_str(), in_description.as_str(), as_phrase.as_str(), tagged.as_str(), scattered.as_str()]
    );
    assert_eq!(found.total, 5);
    assert!(!slugs(&found).contains(&unrelated.as_str()));

    // A stemmed form finds the word; an excluded word takes its articles out; a quoted phrase
    // wants its words together and in order; `or` either.
    let slugs_of = |raw: &'static str| {
        let store = store.clone();
        async move {
            store.list_articles(&search(raw), None).await.unwrap().items.into_iter().map(|a| a.slug).collect::<Vec<_>>()
        }
    };
    // One word: no phrase to stand together, so below the title and description, newest first.
    assert_eq!(
        slugs_of("borrowing").await,
        [in_title.as_str(), in_description.as_str(), tagged.as_str(), scattered.as_str(), as_phrase.as_str()]
    );
    assert_eq!(
        slugs_of("borrow checker -explained").await,
        [in_description.as_str(), as_phrase.as_str(), tagged.as_str(), scattered.as_str()]
    );
    assert_eq!(slugs_of("\"borrow checker\"").await, [in_title.as_str(), in_description.as_str(), as_phrase.as_str()]);
    assert_eq!(slugs_of("\"checker borrow\"").await, Vec::<String>::new());
    assert_eq!(slugs_of("explained or unrelated").await, [unrelated.as_str(), in_title.as_str()]);
    assert_eq!(slugs_of("zeppelin").await, Vec::<String>::new());

    // With a filter; and paged by rank: the cursor is a position in the ranking.
    let mut tagged_only = search("checker");
    tagged_only.tag = Some("borrow".into());
    assert_eq!(slugs(&store.list_articles(&tagged_only, None).await.unwrap()), [tagged.as_str()]);
    let mut paged = search("borrow checker");
    paged.page = Paging { limit: 2, offset: 0, cursor: Some(2) };
    let page = store.list_articles(&paged, None).await.unwrap();
    assert_eq!((slugs(&page), page.total), (vec![as_phrase.as_str(), tagged.as_str()], 5));
    paged.page = Paging { limit: 2, offset: 10, cursor: None };
    let past = store.list_articles(&paged, None).await.unwrap();
    assert_eq!((past.items.len(), past.total), (0, 5));
}

/// Articles by `author` with `body`, titled and slugged `{name}-{i}` for each `i` of `range`
/// (in one call of `seed_articles`: a search's bounds are hundreds of matches).
fn in_bulk(author: UserId, name: &str, body: &str, range: std::ops::Range<i64>) -> Vec<SeedArticle> {
    range
        .map(|i| SeedArticle {
            author,
            slug: slug(&format!("{name}-{i}")),
            article: NewArticle {
                title: format!("{name} {i}"),
                description: "d".into(),
                body: body.into(),
                tags: vec![],
            },
            created_at: chrono::Utc::now(),
            favorited_by: vec![],
            comments: vec![],
        })
        .collect()
}

/// An article whose title is exactly what was searched comes first however old it is: past the
/// newest [`SEARCH_CANDIDATES`] matches, which the walk of the index alone ranks, and past a
/// phrase's window. Its title typed with other case and punctuation finds it; a title that only
/// holds the words does not count as exact; nor does a query with an exclusion or an `or`.
pub async fn an_exact_title_comes_first_however_old(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let old = written(&*store, &jake, "The borrow checker, explained", "old", "nothing to see", &[]).await;
    let longer = written(&*store, &jake, "The borrow checker explained again", "old", "nothing", &[]).await;
    let newer = in_bulk(jake.id, "newer", "the borrow checker explained once more", 0..SEARCH_CANDIDATES + 20);
    store.seed_articles(&newer).await.unwrap();
    let first = |raw: &'static str| {
        let store = store.clone();
        async move {
            let found = store.list_articles(&search(raw), None).await.unwrap();
            (found.items.first().map(|a| a.slug.clone()), found.total)
        }
    };
    let (top, total) = first("the BORROW checker: explained").await;
    assert_eq!(top.as_deref(), Some(old.as_str()), "the exact title first, past the newest 500");
    assert_eq!(total, SEARCH_CANDIDATES + 1, "the newest 500 matches and the exact title");
    assert_eq!(first("\"the borrow checker explained\"").await.0.as_deref(), Some(old.as_str()), "as a phrase too");
    let (top, _) = first("the borrow checker explained again").await;
    assert_eq!(top.as_deref(), Some(longer.as_str()));
    for not_exact in
        ["borrow checker explained", "the borrow checker explained -zeppelin", "the borrow checker explained or x"]
    {
        let found = store.list_articles(&search(not_exact), None).await.unwrap();
        assert!(!found.items.iter().any(|a| a.slug == old), "{not_exact}: not exact, and older than 500 matches");
    }
    let mut tagged = search("the borrow checker explained");
    tagged.tag = Some("nothing".into());
    assert!(store.list_articles(&tagged, None).await.unwrap().items.is_empty(), "filters still apply");
}

/// A phrase's newest [`PHRASE_CANDIDATES`] matches are ranked (it is checked article by
/// article); the same words unquoted, their newest [`SEARCH_CANDIDATES`]; a rare phrase is found
/// past every newer article that holds its words apart.
pub async fn a_phrase_ranks_fewer_matches_and_finds_a_rare_one_far_back(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let rare = written(&*store, &jake, "Rare", "d", "a zero cost abstraction", &[]).await;
    store.seed_articles(&in_bulk(jake.id, "apart", "the cost of zero, apart", 0..200)).await.unwrap();
    let together = in_bulk(jake.id, "together", "rust async, together", 0..PHRASE_CANDIDATES + 30);
    store.seed_articles(&together).await.unwrap();
    let total = |raw: &'static str| {
        let store = store.clone();
        async move { store.list_articles(&search(raw), None).await.unwrap().total }
    };
    assert_eq!(total("\"rust async\"").await, PHRASE_CANDIDATES);
    assert_eq!(total("rust async").await, PHRASE_CANDIDATES + 30);
    let found = store.list_articles(&search("\"zero cost\""), None).await.unwrap();
    assert_eq!(slugs(&found), [rare.as_str()], "found past 200 newer articles with its words apart");
}

pub async fn search_sees_every_write_at_once_and_escapes_its_snippets(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let found = |raw: &'static str| {
        let store = store.clone();
        async move { store.list_articles(&search(raw), None).await.unwrap() }
    };
    let name =
        written(&*store, &jake, "Zeppelins", "airships", "A <b>zeppelin</b> & its <script>crew</script>.", &[]).await;
    let page = found("zeppelin").await;
    assert_eq!(slugs(&page), [name.as_str()]);
    let snippet = page.items[0].snippet.clone().expect("a snippet");
    assert!(snippet.contains("<mark>zeppelin</mark>"), "{snippet}");
    assert!(!snippet.contains("<b>") && !snippet.contains("<script>"), "markup is escaped: {snippet}");
    assert!(snippet.contains("&lt;b&gt;<mark>zeppelin</mark>&lt;/b&gt;"), "{snippet}");

    // Edited: the old words go, the new come, in the same write.
    let id = page.items[0].id;
    let changes = ArticleChanges { body: Some("Now about blimps.".into()), ..Default::default() };
    store.update_article(id, jake.id, &slug(&name), None, &changes).await.unwrap().expect("updated");
    assert!(found("zeppelin -airships").await.items.is_empty());
    assert_eq!(slugs(&found("blimps").await), [name.as_str()]);
    let retitled = ArticleChanges { title: Some("Dirigibles".into()), ..Default::default() };
    let renamed = store.update_article(id, jake.id, &slug(&name), Some(&slug("dirigibles")), &retitled).await.unwrap();
    assert_eq!(renamed.map(|a| a.slug), Some("dirigibles".to_string()));
    assert_eq!(slugs(&found("dirigibles").await), ["dirigibles"]);
    assert!(found("zeppelins").await.items.is_empty());

    // Deleted: never found again.
    assert!(store.delete_article(id, jake.id).await.unwrap());
    assert!(found("dirigibles").await.items.is_empty());
    assert!(found("blimps").await.items.is_empty());
}

pub async fn bodies_are_kept_as_safe_html_beside_their_markdown(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let name = written(&*store, &jake, "Html", "d", "Hello *world* <script>alert(1)</script>", &[]).await;
    let article = store.article(&slug(&name), None).await.unwrap().unwrap();
    assert_eq!(article.body_html.as_deref(), Some("<p>Hello <em>world</em> </p>\n"));
    let changes = ArticleChanges { body: Some("[x](javascript:alert(1)) **bold**".into()), ..Default::default() };
    store.update_article(article.id, jake.id, &slug(&name), None, &changes).await.unwrap();
    let article = store.article(&slug(&name), None).await.unwrap().unwrap();
    assert_eq!(
        article.body_html.as_deref(),
        Some("<p><a rel=\"nofollow ugc noopener\">x</a> <strong>bold</strong></p>\n")
    );
    // Listings carry neither body.
    let listed = store.list_articles(&query(), None).await.unwrap();
    assert_eq!((listed.items[0].body.as_deref(), listed.items[0].body_html.as_deref()), (None, None));

    let comment =
        store.create_comment(article.id, jake.id, "a `code` <img src=x onerror=alert(1)>", None).await.unwrap();
    assert_eq!(comment.body_html.as_deref(), Some("<p>a <code>code</code> <img src=\"x\"></p>\n"));
    let listed = store.comments(article.id, None, Paging::default()).await.unwrap();
    assert_eq!(listed[0].body_html, comment.body_html);
}

/// Rows written before `body_html` existed get it when the store migrates, and articles from
/// before `title_key` get theirs from `fill_missing_title_keys` (an exact-title search finds
/// the article again): `execute` runs SQL
/// on the database behind the store (to empty the column, as the migration that added it left
/// every older row), `migrate` runs the store's migration again. Called by each backend's
/// `tests/migrate.rs`, which alone can reach that database.
pub async fn bodies_without_html_get_it_when_migrating<E, EF, M>(store: &dyn Store, execute: E, migrate: M)
where
    E: Fn(&'static str) -> EF,
    EF: std::future::Future<Output = ()>,
    M: std::future::Future<Output = ()>,
{
    let jake = store
        .seed_users(&[NewUser {
            username: username("jake"),
            email: Email::parse("jake@example.com").unwrap(),
            password_hash: "hash".into(),
        }])
        .await
        .unwrap()[0];
    let seeded = SeedArticle {
        author: jake,
        slug: slug("old"),
        article: NewArticle { title: "Old".into(), description: "d".into(), body: "*old*".into(), tags: vec![] },
        created_at: chrono::Utc::now(),
        favorited_by: vec![],
        comments: vec![(jake, "**old comment**".into())],
    };
    store.seed_articles(&[seeded]).await.unwrap();
    // Newer than it, and more than a search ranks, each with its title's word.
    let newer = in_bulk(jake, "newer", "old", 0..SEARCH_CANDIDATES + 20);
    store.seed_articles(&newer).await.unwrap();
    for forget in ["UPDATE articles SET body_html = NULL, title_key = NULL", "UPDATE comments SET body_html = NULL"] {
        execute(forget).await;
    }
    let before = store.uncached().list_articles(&query(), None).await.unwrap();
    assert_eq!(before.total, SEARCH_CANDIDATES + 21);
    migrate.await;
    // The title keys are written beside serving (the server starts this after migrating).
    assert_eq!(store.uncached().fill_missing_title_keys().await.unwrap(), SEARCH_CANDIDATES as u64 + 21);
    assert_eq!(store.uncached().fill_missing_title_keys().await.unwrap(), 0, "once");
    let read = store.article(&slug("old"), None).await.unwrap().unwrap();
    let id = read.id;
    assert_eq!(read.body_html.as_deref(), Some("<p><em>old</em></p>\n"));
    let comments = store.comments(id, None, Paging::default()).await.unwrap();
    assert_eq!(comments[0].body_html.as_deref(), Some("<p><strong>old comment</strong></p>\n"));
    let found = store.uncached().list_articles(&search("old"), None).await.unwrap();
    assert_eq!(found.items.first().map(|a| a.slug.as_str()), Some("old"), "its exact title, past 500 newer matches");
}

// --- moderation ---

use crate::moderation::{Action, LogQuery, Moderated, ModerationAction, NewReport, Target, TargetKind};

fn on_article(article: &conduit_domain::Article) -> Target {
    Target { kind: TargetKind::Article, id: article.id.get() }
}

fn on_user(user: &User) -> Target {
    Target { kind: TargetKind::Profile, id: user.id.get() }
}

fn report_of(reporter: &User, target: Target) -> NewReport {
    NewReport { reporter: reporter.id, target, reason: "spam", details: format!("by {}", reporter.username) }
}

fn act(moderator: &User, action: Action, target: Target, report: Option<i64>) -> ModerationAction {
    ModerationAction {
        moderator: moderator.id,
        action,
        target,
        reason: format!("{} because", action.as_str()),
        report,
        outgoing: Outgoing::default(),
    }
}

async fn moderator(store: &dyn Store, name: &str) -> User {
    user(store, name).await;
    let changes = AccountChanges { role: Some(conduit_domain::model::Role::Moderator), active: None, by: None };
    store.set_account(&username(name), &changes).await.unwrap().unwrap()
}

fn done(moderated: Moderated) -> crate::moderation::LogEntry {
    match moderated {
        Moderated::Done { entry, .. } => *entry,
        other => panic!("expected the action done, got {other:?}"),
    }
}

pub async fn reports_gather_by_target_once_per_reporter(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let reporters = [user(&*store, "anna").await, user(&*store, "bob").await, user(&*store, "carl").await];
    let a = article(&*store, &jake, "spam", &[]).await;
    let first = store.report(&report_of(&reporters[0], on_article(&a))).await.unwrap().unwrap();
    assert_eq!(first.state, "open");
    assert!(matches!(store.report(&report_of(&reporters[0], on_article(&a))).await, Err(DbError::Conflict("report"))));
    for reporter in &reporters[1..] {
        store.report(&report_of(reporter, on_article(&a))).await.unwrap().unwrap();
    }
    let profile = store.report(&report_of(&reporters[1], on_user(&jake))).await.unwrap().unwrap();
    let gone = Target { kind: TargetKind::Article, id: 999_999 };
    assert!(store.report(&report_of(&reporters[1], gone)).await.unwrap().is_none(), "nothing to report");

    let queue = store.report_queue(None, 10).await.unwrap();
    assert_eq!(queue.len(), 2, "one entry per target, however many reports: {queue:?}");
    assert_eq!((queue[0].target, queue[0].open_reports, queue[0].first_report), (on_article(&a), 3, first.id));
    assert_eq!(queue[0].label.as_deref(), Some(a.slug.as_str()));
    assert_eq!((queue[0].user.as_deref(), queue[0].details.as_str()), (Some("jake"), "by anna"));
    assert_eq!((queue[1].target, queue[1].open_reports), (on_user(&jake), 1));
    let after = store.report_queue(Some(queue[0].first_report), 10).await.unwrap();
    assert_eq!(after.len(), 1, "keyset pages by the oldest open report");
    assert_eq!(after[0].first_report, profile.id);

    let mine = store.reports_of(reporters[1].id, None, 10).await.unwrap();
    assert_eq!(mine.iter().map(|r| r.target).collect::<Vec<_>>(), [on_user(&jake), on_article(&a)], "newest first");
}

pub async fn an_action_answers_every_open_report_and_is_logged(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let mo = moderator(&*store, "mo").await;
    let a = article(&*store, &jake, "spam", &[]).await;
    let first = store.report(&report_of(&anna, on_article(&a))).await.unwrap().unwrap();
    store.report(&report_of(&mo, on_article(&a))).await.unwrap().unwrap();

    let entry = done(store.moderate(&act(&mo, Action::Hide, on_article(&a), Some(first.id))).await.unwrap());
    assert_eq!((entry.moderator.as_str(), entry.action.as_str()), ("mo", "hide"));
    assert_eq!(
        (entry.label.as_str(), entry.user.as_deref(), entry.report),
        (a.slug.as_str(), Some("jake"), Some(first.id))
    );
    assert!(store.report_queue(None, 10).await.unwrap().is_empty(), "both reports answered");
    assert_eq!(store.reports_of(anna.id, None, 10).await.unwrap()[0].state, "actioned");
    assert!(store.reports_of(anna.id, None, 10).await.unwrap()[0].resolved_at.is_some());

    // The same report again: closed, nothing changes, nothing is logged.
    let again = store.moderate(&act(&mo, Action::Unhide, on_article(&a), Some(first.id))).await.unwrap();
    assert_eq!(again, Moderated::ReportClosed);
    assert!(store.article(&slug(&a.slug), None).await.unwrap().unwrap().hidden, "still hidden");
    let log = store.moderation_log(&LogQuery { limit: 10, ..LogQuery::default() }).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["hide", "role"], "the hide, and the moderator's promotion before it");

    // Reports of what is gone can be dismissed; nothing else can be done to it.
    let second = store.report(&report_of(&anna, on_user(&jake))).await.unwrap().unwrap();
    assert!(store.delete_article(a.id, jake.id).await.unwrap());
    assert_eq!(store.moderate(&act(&mo, Action::Delete, on_article(&a), None)).await.unwrap(), Moderated::TargetGone);
    let dismissed = done(store.moderate(&act(&mo, Action::Dismiss, on_user(&jake), Some(second.id))).await.unwrap());
    assert_eq!(dismissed.action, "dismiss");
    assert_eq!(store.reports_of(anna.id, None, 10).await.unwrap()[0].state, "dismissed");
    // A moderator or admin is not suspended or purged by a moderator.
    assert_eq!(store.moderate(&act(&jake, Action::Purge, on_user(&mo), None)).await.unwrap(), Moderated::Protected);

    let by_kind = LogQuery { action: Some("dismiss"), limit: 10, ..LogQuery::default() };
    assert_eq!(store.moderation_log(&by_kind).await.unwrap().len(), 1);
    let by_target = LogQuery { target: Some(on_article(&a)), limit: 10, ..LogQuery::default() };
    assert_eq!(store.moderation_log(&by_target).await.unwrap()[0].action, "hide");
    let by_moderator = LogQuery { moderator: Some("mo".into()), limit: 1, ..LogQuery::default() };
    let newest = store.moderation_log(&by_moderator).await.unwrap();
    assert_eq!(newest[0].action, "dismiss", "newest first");
    let older = LogQuery { moderator: Some("mo".into()), before: Some(newest[0].id), limit: 10, ..LogQuery::default() };
    assert_eq!(store.moderation_log(&older).await.unwrap()[0].action, "hide");
    let nobody = LogQuery { moderator: Some("jake".into()), limit: 10, ..LogQuery::default() };
    assert!(store.moderation_log(&nobody).await.unwrap().is_empty());
}

pub async fn two_moderators_answering_one_report_at_once_one_wins(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let (mo, max) = (moderator(&*store, "mo").await, moderator(&*store, "max").await);
    for round in 0..5 {
        let a = article(&*store, &jake, &format!("spam {round}"), &[]).await;
        let report = store.report(&report_of(&anna, on_article(&a))).await.unwrap().unwrap();
        let (hide, dismiss) = (
            act(&mo, Action::Hide, on_article(&a), Some(report.id)),
            act(&max, Action::Dismiss, on_article(&a), Some(report.id)),
        );
        let (one, other) = tokio::join!(store.moderate(&hide), store.moderate(&dismiss));
        let outcomes = [one.unwrap(), other.unwrap()];
        let won = outcomes.iter().filter(|o| matches!(o, Moderated::Done { .. })).count();
        assert_eq!(won, 1, "round {round}: exactly one answers the report: {outcomes:?}");
        assert!(outcomes.contains(&Moderated::ReportClosed), "round {round}");
        let logged = LogQuery { target: Some(on_article(&a)), limit: 10, ..LogQuery::default() };
        let log = store.moderation_log(&logged).await.unwrap();
        assert_eq!(log.len(), 1, "round {round}: the log names the winner only");
        let hidden = store.article(&slug(&a.slug), Some(jake.id)).await.unwrap().unwrap().hidden;
        assert_eq!(hidden, log[0].action == "hide", "round {round}: what was done is what the log says");
    }
}

pub async fn hidden_articles_leave_listings_counts_and_search(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let mo = moderator(&*store, "mo").await;
    store.follow(anna.id, &username("jake")).await.unwrap();
    let kept = article(&*store, &jake, "kept words", &["a"]).await;
    let spam = article(&*store, &jake, "spam words", &["a", "b"]).await;
    store.favorite(anna.id, &slug(&spam.slug)).await.unwrap();
    assert_counts_hold(&store, anna.id, "before").await;

    done(store.moderate(&act(&mo, Action::Hide, on_article(&spam), None)).await.unwrap());
    assert_counts_hold(&store, anna.id, "hidden").await;
    let all = store.list_articles(&query(), None).await.unwrap();
    assert_eq!(slugs(&all), [kept.slug.as_str()]);
    assert_eq!(all.total, 1);
    let favorited = ArticleQuery { favorited: Some(username("anna")), ..query() };
    assert_eq!(store.list_articles(&favorited, None).await.unwrap().total, 0);
    let both = ArticleQuery { tag: Some("a".into()), author: Some(username("jake")), ..query() };
    assert_eq!(slugs(&store.list_articles(&both, None).await.unwrap()), [kept.slug.as_str()], "combined filters too");
    assert_eq!(store.feed(anna.id, Paging::default()).await.unwrap().total, 1);
    assert_eq!(slugs(&store.list_articles(&search("words"), None).await.unwrap()), [kept.slug.as_str()], "search too");
    assert_eq!(store.tags().await.unwrap(), ["a"], "a tag only the hidden article has is not listed");
    let read = store.article(&slug(&spam.slug), None).await.unwrap().unwrap();
    assert!(read.hidden, "read by slug, it is marked (the API shows it to its author and moderators only)");
    assert!(store.article_ref(&slug(&spam.slug)).await.unwrap().unwrap().hidden);

    // Changes while hidden count nothing; shown again, it counts as before.
    let retag = ArticleChanges { tags: Some(vec!["c".into()]), ..ArticleChanges::default() };
    store.update_article(spam.id, jake.id, &slug(&spam.slug), None, &retag).await.unwrap().unwrap();
    store.unfavorite(anna.id, &slug(&spam.slug)).await.unwrap();
    store.favorite(mo.id, &slug(&spam.slug)).await.unwrap();
    assert_counts_hold(&store, anna.id, "changed while hidden").await;
    done(store.moderate(&act(&mo, Action::Unhide, on_article(&spam), None)).await.unwrap());
    assert_counts_hold(&store, anna.id, "shown again").await;
    assert_eq!(store.list_articles(&query(), None).await.unwrap().total, 2);
    assert_eq!(store.list_articles(&ArticleQuery { tag: Some("c".into()), ..query() }, None).await.unwrap().total, 1);

    // Deleting a hidden article, alone or with its author, leaves the counts true.
    done(store.moderate(&act(&mo, Action::Hide, on_article(&spam), None)).await.unwrap());
    assert!(store.delete_article(spam.id, jake.id).await.unwrap());
    assert_counts_hold(&store, anna.id, "hidden, then deleted").await;
    done(store.moderate(&act(&mo, Action::Hide, on_article(&kept), None)).await.unwrap());
    let jake = store.user_by_id(jake.id).await.unwrap().unwrap();
    assert!(
        store.delete_user(jake.id, jake.token_version, DeletedContent::Delete, &Outgoing::default()).await.unwrap()
    );
    assert_counts_hold(&store, anna.id, "author of a hidden article deleted").await;
    assert!(store.tags().await.unwrap().is_empty());
}

pub async fn hidden_comments_show_to_their_author_and_moderators(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let mo = moderator(&*store, "mo").await;
    let a = article(&*store, &jake, "thread", &[]).await;
    let rude = store.create_comment(a.id, anna.id, "rude", None).await.unwrap();
    store.create_comment(a.id, jake.id, "polite", None).await.unwrap();
    let target = Target { kind: TargetKind::Comment, id: rude.id.get() };
    let entry = done(store.moderate(&act(&mo, Action::Hide, target, None)).await.unwrap());
    assert_eq!((entry.label, entry.user.as_deref()), (format!("{}#{}", a.slug, rude.id.get()), Some("anna")));
    let seen_by = |viewer: Option<UserId>| {
        let store = store.clone();
        async move {
            let comments = store.comments(a.id, viewer, Paging::default()).await.unwrap();
            comments.into_iter().map(|c| (c.body, c.hidden)).collect::<Vec<_>>()
        }
    };
    assert_eq!(seen_by(None).await, [("polite".to_owned(), false)]);
    assert_eq!(
        seen_by(Some(jake.id)).await,
        [("polite".to_owned(), false)],
        "the article's author is not the comment's"
    );
    let marked = [("rude".to_owned(), true), ("polite".to_owned(), false)];
    assert_eq!(seen_by(Some(anna.id)).await, marked, "its author sees it, marked");
    assert_eq!(seen_by(Some(mo.id)).await, marked, "moderators see it, marked");
    done(store.moderate(&act(&mo, Action::Delete, target, None)).await.unwrap());
    assert_eq!(seen_by(Some(mo.id)).await, [("polite".to_owned(), false)]);
}

/// A post held for review is written hidden with a report from no one, in its own transaction:
/// counted nowhere, in the queue at once, and let out by `unhide` like any hidden article.
pub async fn held_posts_wait_hidden_in_the_queue(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let mo = moderator(&*store, "mo").await;
    let shown = article(&*store, &anna, "shown", &["t"]).await;
    let held = store
        .create_article(jake.id, &slug("held"), &new_article("held", &["t", "spam"]), Some("held: 5 links"))
        .await
        .unwrap();
    assert!(held.hidden, "its author reads it back marked");
    assert_counts_hold(&store, anna.id, "held").await;
    assert_eq!(slugs(&store.list_articles(&query(), None).await.unwrap()), [shown.slug.as_str()]);
    assert_eq!(store.tags().await.unwrap(), ["t"]);
    let comment = store.create_comment(shown.id, jake.id, "buy now", Some("held: 3 links")).await.unwrap();
    assert!(comment.hidden);
    assert!(store.comments(shown.id, Some(anna.id), Paging::default()).await.unwrap().is_empty());

    let queue = store.report_queue(None, 10).await.unwrap();
    let entries: Vec<_> =
        queue.iter().map(|e| (e.target, e.open_reports, e.reason.as_str(), e.details.as_str())).collect();
    let on_comment = Target { kind: TargetKind::Comment, id: comment.id.get() };
    assert_eq!(
        entries,
        [(on_article(&held), 1, "spam", "held: 5 links"), (on_comment, 1, "spam", "held: 3 links")],
        "in the queue, oldest first"
    );
    done(store.moderate(&act(&mo, Action::Unhide, on_article(&held), Some(queue[0].first_report))).await.unwrap());
    assert_counts_hold(&store, anna.id, "let out").await;
    assert_eq!(store.list_articles(&query(), None).await.unwrap().total, 2);
    done(store.moderate(&act(&mo, Action::Delete, on_comment, Some(queue[1].first_report))).await.unwrap());
    assert!(store.report_queue(None, 10).await.unwrap().is_empty(), "both answered");
}

/// The console's user search: a name or address prefix in any case (LIKE's own characters
/// matched as themselves), role, active, suspended, and keyset pages by id.
pub async fn users_are_found_by_prefix_and_filters(store: TestStore) {
    let names = ["anna", "annabel", "an_x", "bob", "Anders"];
    for name in names {
        user(&*store, name).await;
    }
    let mo = moderator(&*store, "mo").await;
    let find = |search: UserSearch| {
        let store = store.clone();
        async move {
            let found = store.find_users(&UserSearch { limit: 10, ..search }).await.unwrap();
            found.into_iter().map(|u| u.username).collect::<Vec<_>>()
        }
    };
    let prefix = |p: &str| UserSearch { prefix: Some(p.into()), ..UserSearch::default() };
    assert_eq!(find(prefix("ANN")).await, ["anna", "annabel"], "any letter case");
    assert_eq!(find(prefix("an_")).await, ["an_x"], "_ is itself, not any character");
    assert_eq!(find(prefix("an%")).await, Vec::<String>::new(), "% is itself");
    assert_eq!(find(prefix("bob@ex")).await, ["bob"], "an address's start");
    assert_eq!(find(prefix("an")).await, ["anna", "annabel", "an_x", "Anders"]);
    let first = store.find_users(&UserSearch { limit: 2, ..prefix("an") }).await.unwrap();
    let after = Some(first[1].id.get());
    assert_eq!(find(UserSearch { after, ..prefix("an") }).await, ["an_x", "Anders"], "the next page");
    let moderators = UserSearch { role: Some(conduit_domain::model::Role::Moderator), ..UserSearch::default() };
    assert_eq!(find(moderators).await, ["mo"]);
    let now = chrono::Utc::now().timestamp();
    let bob = store.user_id_by_name(&username("bob")).await.unwrap().unwrap();
    let bob = Target { kind: TargetKind::Profile, id: bob.get() };
    done(store.moderate(&act(&mo, Action::Suspend { until: now + 3600 }, bob, None)).await.unwrap());
    assert_eq!(find(UserSearch { suspended_at: Some(now), ..UserSearch::default() }).await, ["bob"]);
    assert!(find(UserSearch { suspended_at: Some(now + 7200), ..UserSearch::default() }).await.is_empty(), "over");
    let changes = AccountChanges { role: None, active: Some(false), by: None };
    store.set_account(&username("anna"), &changes).await.unwrap().unwrap();
    assert_eq!(find(UserSearch { active: Some(false), ..UserSearch::default() }).await, ["anna"]);
    assert_eq!(find(UserSearch { verified: Some(true), ..UserSearch::default() }).await, Vec::<String>::new());
}

/// A prefix more users have than are worth listing from the name and address indexes
/// (`users::PREFIX_CANDIDATES`, 10,000) is searched by walking the users by id: the same
/// answers, in the same order, page after page, as the narrow path gives a rare prefix.
pub async fn a_common_prefix_walks_the_users_by_id(store: TestStore) {
    bulk_users(&store, 10_050, |i| (format!("walker{i}"), format!("w{i}@example.com"))).await;
    user(&*store, "WALKING").await;
    let names =
        |found: Vec<conduit_domain::User>| found.into_iter().map(|u| u.username.to_string()).collect::<Vec<_>>();
    let search = |prefix: &str, after: Option<i64>, limit: i64| UserSearch {
        prefix: Some(prefix.into()),
        after,
        limit,
        ..UserSearch::default()
    };
    let first = store.find_users(&search("walk", None, 3)).await.unwrap();
    assert_eq!(names(first.clone()), ["walker0", "walker1", "walker2"], "the walk: oldest first");
    let mut after = Some(first[2].id.get());
    let mut seen = 3;
    loop {
        let page = store.find_users(&search("WALK", after, 1000)).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.get());
        seen += page.len();
    }
    assert_eq!(seen, 10_051, "every walker and WALKING, each once, through the pages");
    let tail = store.find_users(&search("walk", Some(first[0].id.get() + 10_048), 10)).await.unwrap();
    assert_eq!(names(tail), ["walker10049", "WALKING"], "the walk's last page");
    let narrow = store.find_users(&search("walkerl", None, 10)).await.unwrap();
    assert!(narrow.is_empty(), "a prefix nobody has: none, from the indexes");
    let few = store.find_users(&search("walker1004", None, 20)).await.unwrap();
    assert_eq!(
        names(few),
        [
            "walker1004",
            "walker10040",
            "walker10041",
            "walker10042",
            "walker10043",
            "walker10044",
            "walker10045",
            "walker10046",
            "walker10047",
            "walker10048",
            "walker10049"
        ],
        "a rare prefix: from the indexes"
    );
    let by_address = store.find_users(&search("w1234@", None, 10)).await.unwrap();
    assert_eq!(names(by_address), ["walker1234"]);
}

/// An admin's change to an account is in the moderation log with who made it, in the change's
/// transaction; the command line's changes are too, as the command line.
pub async fn account_changes_are_logged_with_who_made_them(store: TestStore) {
    use conduit_domain::model::Role;
    let boss = user(&*store, "boss").await;
    user(&*store, "jake").await;
    let by = Some(boss.id);
    store
        .set_account(&username("jake"), &AccountChanges { role: Some(Role::Moderator), active: None, by })
        .await
        .unwrap();
    store.set_account(&username("jake"), &AccountChanges { role: None, active: Some(false), by: None }).await.unwrap();
    let log = store.moderation_log(&LogQuery { limit: 10, ..LogQuery::default() }).await.unwrap();
    let entries: Vec<_> =
        log.iter().map(|e| (e.moderator.as_str(), e.action.as_str(), e.label.as_str(), e.reason.as_str())).collect();
    assert_eq!(
        entries,
        [("(command line)", "deactivate", "jake", "deactivated"), ("boss", "role", "jake", "role: moderator")],
        "newest first"
    );
    let failed =
        store.set_account(&username("nobody"), &AccountChanges { role: Some(Role::Admin), active: None, by }).await;
    assert!(failed.unwrap().is_none());
    let log = store.moderation_log(&LogQuery { limit: 10, ..LogQuery::default() }).await.unwrap();
    assert_eq!(log.len(), 2, "no account, no entry");
}

/// An admin's operations on the site (dead mail requeued, a backup taken, verified,
/// downloaded) are in the log with who did them, the requeue in its own transaction and only
/// when it requeued something; the public log (`operations: false`) leaves them out.
pub async fn operations_on_mail_and_backups_are_logged_with_who_did_them(store: TestStore) {
    use crate::moderation::{BackupAction, TargetKind};
    let boss = user(&*store, "boss").await;
    let outgoing = Outgoing { mails: vec![mail("reset", "boss@example.com")], ..Outgoing::default() };
    store.mail_account(&email("boss@example.com"), &outgoing).await.unwrap().unwrap();
    let now = now_ms();
    for claimed in store.claim_mail(now, now + 60_000, 10).await.unwrap() {
        store.mail_failed(claimed.id, "550 no such user", None, false).await.unwrap();
    }
    let dead = store.list_mail(Some("dead"), 10).await.unwrap();
    assert!(!dead.is_empty());
    assert_eq!(store.retry_mail(Some(dead[0].id), now, Some(boss.id)).await.unwrap(), 1);
    assert_eq!(store.retry_mail(Some(dead[0].id + 1000), now, Some(boss.id)).await.unwrap(), 0);
    assert_eq!(store.retry_mail(None, now, None).await.unwrap(), dead.len() as u64 - 1);
    store.log_backup(boss.id, BackupAction::Take, "(a new one)").await.unwrap();
    store.log_backup(boss.id, BackupAction::Verify, "conduit-1.backup").await.unwrap();
    store.log_backup(boss.id, BackupAction::Download, "conduit-1.backup").await.unwrap();

    let log = store.moderation_log(&LogQuery { operations: true, limit: 10, ..LogQuery::default() }).await.unwrap();
    let entries: Vec<_> = log
        .iter()
        .map(|e| (e.moderator.as_str(), e.action.as_str(), e.target.kind, e.label.as_str(), e.reason.as_str()))
        .collect();
    let one = format!("#{}", dead[0].id);
    let mut expected = vec![
        ("boss", "download", TargetKind::Backup, "conduit-1.backup", "in the console"),
        ("boss", "verify", TargetKind::Backup, "conduit-1.backup", "in the console"),
        ("boss", "backup", TargetKind::Backup, "(a new one)", "in the console"),
    ];
    let others = format!("{} requeued", dead.len() - 1);
    if dead.len() > 1 {
        expected.push(("(command line)", "requeue", TargetKind::Mail, "every dead message", others.as_str()));
    }
    expected.push(("boss", "requeue", TargetKind::Mail, one.as_str(), "1 requeued"));
    assert_eq!(entries, expected, "newest first; a requeue of nothing leaves no entry");
    assert_eq!(log.last().unwrap().target.id, dead[0].id);

    let public = store.moderation_log(&LogQuery { limit: 10, ..LogQuery::default() }).await.unwrap();
    assert!(public.is_empty(), "the public log has no operations: {public:?}");
    let by_action = LogQuery { operations: true, action: Some("verify"), limit: 10, ..LogQuery::default() };
    assert_eq!(store.moderation_log(&by_action).await.unwrap().len(), 1);
}

pub async fn suspensions_and_purges_change_the_user(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let mo = moderator(&*store, "mo").await;
    let a = article(&*store, &jake, "jakes", &["a"]).await;
    store.favorite(anna.id, &slug(&a.slug)).await.unwrap();
    store.create_comment(a.id, anna.id, "hi", None).await.unwrap();
    let until = chrono::Utc::now().timestamp() + 3600;
    let notice = Mail { kind: "suspended", to: String::new(), subject: "s".into(), body: "b".into() };
    let suspend = ModerationAction {
        outgoing: Outgoing { mails: vec![notice], ..Outgoing::default() },
        ..act(&mo, Action::Suspend { until }, on_article(&a), None)
    };
    let entry = done(store.moderate(&suspend).await.unwrap());
    assert_eq!((entry.until, entry.user.as_deref()), (Some(until), Some("jake")), "an article's author is suspended");
    let suspended = store.user_by_id(jake.id).await.unwrap().unwrap();
    let suspension = suspended.suspended_at(until - 1).expect("suspended");
    assert_eq!((suspension.until, suspension.reason.as_str()), (until, "suspend because"));
    assert!(suspended.suspended_at(until).is_none(), "over at its end");
    let mail = &store.list_mail(None, 10).await.unwrap()[0];
    assert_eq!((mail.kind.as_str(), mail.to.as_str()), ("suspended", "jake@example.com"), "the notice goes to them");
    done(store.moderate(&act(&mo, Action::Unsuspend, on_user(&jake), None)).await.unwrap());
    assert!(store.user_by_id(jake.id).await.unwrap().unwrap().suspension.is_none());

    done(store.moderate(&act(&mo, Action::Purge, on_user(&anna), None)).await.unwrap());
    assert!(store.user_by_id(anna.id).await.unwrap().is_none());
    assert!(store.comments(a.id, Some(mo.id), Paging::default()).await.unwrap().is_empty(), "what they wrote went");
    assert_eq!(store.article(&slug(&a.slug), None).await.unwrap().unwrap().favorites_count, 0);
    assert_counts_hold(&store, jake.id, "purged").await;
    let log = store.moderation_log(&LogQuery { target: Some(on_user(&anna)), limit: 10, ..LogQuery::default() }).await;
    assert_eq!(log.unwrap()[0].label, "anna", "the log names the purged account as it was");
}

// --- blocks ---

pub async fn blocks_leave_the_blocked_out_for_the_blocker(store: TestStore) {
    let jake = user(&*store, "jake").await;
    let anna = user(&*store, "anna").await;
    let troll = user(&*store, "troll").await;
    let mo = moderator(&*store, "mo").await;
    store.follow(anna.id, &username("troll")).await.unwrap();
    store.follow(troll.id, &username("anna")).await.unwrap();
    let mine = article(&*store, &jake, "jakes words", &["a"]).await;
    let trolls = article(&*store, &troll, "trolls words", &["a"]).await;
    store.favorite(jake.id, &slug(&mine.slug)).await.unwrap();
    store.favorite(jake.id, &slug(&trolls.slug)).await.unwrap();
    store.create_comment(mine.id, troll.id, "troll comment", None).await.unwrap();
    store.create_comment(mine.id, jake.id, "jake comment", None).await.unwrap();

    assert!(store.block(anna.id, &username("troll")).await.unwrap());
    assert!(store.block(anna.id, &username("troll")).await.unwrap(), "idempotent");
    assert!(!store.block(anna.id, &username("anna")).await.unwrap(), "nobody blocks themselves");
    assert!(!store.block(anna.id, &username("nobody")).await.unwrap());
    assert_eq!(store.user_by_id(anna.id).await.unwrap().unwrap().blocking, 1, "counted once");
    assert!(store.blocks(anna.id, troll.id).await.unwrap());
    assert!(!store.blocks(troll.id, anna.id).await.unwrap());
    let listed = store.blocked_users(anna.id, None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|b| b.username.as_str()).collect::<Vec<_>>(), ["troll"]);
    assert!(store.blocked_users(anna.id, Some(listed[0].id), 10).await.unwrap().is_empty());

    let shapes = [
        query(),
        ArticleQuery { tag: Some("a".into()), ..query() },
        ArticleQuery { favorited: Some(username("jake")), ..query() },
        ArticleQuery { tag: Some("a".into()), favorited: Some(username("jake")), ..query() },
        search("words"),
    ];
    for shape in shapes {
        let skipping = ArticleQuery { skip_blocked: true, ..shape.clone() };
        let seen = store.list_articles(&skipping, Some(anna.id)).await.unwrap();
        assert_eq!(slugs(&seen), [mine.slug.as_str()], "{shape:?}");
        let plain = store.list_articles(&shape, Some(anna.id)).await.unwrap();
        assert_eq!(plain.items.len(), 2, "without skip_blocked (a reader who blocks nobody): {shape:?}");
    }
    let by_troll = ArticleQuery { author: Some(username("troll")), skip_blocked: true, ..query() };
    assert!(store.list_articles(&by_troll, Some(anna.id)).await.unwrap().items.is_empty());
    let deep = ArticleQuery { skip_blocked: true, page: Paging { limit: 1, ..Paging::default() }, ..query() };
    let first = store.list_articles(&deep, Some(anna.id)).await.unwrap();
    assert_eq!(slugs(&first), [mine.slug.as_str()], "the blocked are skipped, not counted against the page");

    // The follows between them ended, both ways, and neither can follow the other now.
    assert!(!store.profile(&username("troll"), Some(anna.id)).await.unwrap().unwrap().following);
    assert!(!store.profile(&username("anna"), Some(troll.id)).await.unwrap().unwrap().following);
    assert!(!store.follow(troll.id, &username("anna")).await.unwrap().unwrap().following);
    assert!(!store.follow(anna.id, &username("troll")).await.unwrap().unwrap().following);
    assert!(store.feed(anna.id, Paging::default()).await.unwrap().items.is_empty());

    let thread = |viewer: UserId| {
        let store = store.clone();
        async move {
            let comments = store.comments(mine.id, Some(viewer), Paging::default()).await.unwrap();
            comments.into_iter().map(|c| c.body).collect::<Vec<_>>()
        }
    };
    assert_eq!(thread(anna.id).await, ["jake comment"]);
    assert_eq!(thread(jake.id).await, ["troll comment", "jake comment"]);
    assert!(store.block(mo.id, &username("troll")).await.unwrap());
    assert_eq!(thread(mo.id).await, ["troll comment", "jake comment"], "a moderator's blocks do not blind them");

    assert!(store.unblock(anna.id, &username("troll")).await.unwrap());
    assert!(store.unblock(anna.id, &username("troll")).await.unwrap(), "idempotent");
    assert_eq!(store.user_by_id(anna.id).await.unwrap().unwrap().blocking, 0);
    assert_eq!(thread(anna.id).await, ["troll comment", "jake comment"]);
    assert!(store.follow(anna.id, &username("troll")).await.unwrap().unwrap().following, "may follow again");
}

/// What each notification says, in a person's inbox, newest first.
async fn inbox(store: &TestStore, of: &User) -> Vec<String> {
    let page = store.notifications(of.id, None, 100).await.unwrap().0;
    page.iter()
        .map(|n| {
            let actor = n.actor.as_ref().map_or("-", |a| a.username.as_str());
            let about = n.article.as_ref().map_or_else(|| n.detail.clone().unwrap_or_default(), |a| a.0.clone());
            let action = n.action.as_deref().map(|a| format!(" {a}")).unwrap_or_default();
            format!("{} {actor} {about}{action}", n.kind.as_str())
        })
        .collect()
}

/// Follows, comments (to the author, and as replies to earlier commenters), favorites and a
/// moderator's actions are told once each, never to the one who did them, never from someone
/// the recipient blocks; a block takes back what the blocked person caused.
pub async fn notifications_tell_of_what_others_do_once(store: TestStore) {
    let (anna, bob, carl) = (user(&*store, "anna").await, user(&*store, "bob").await, user(&*store, "carl").await);
    let mo = moderator(&*store, "mo").await;
    store.follow(bob.id, &username("anna")).await.unwrap();
    store.unfollow(bob.id, &username("anna")).await.unwrap();
    store.follow(bob.id, &username("anna")).await.unwrap();
    assert_eq!(inbox(&store, &anna).await, ["follow bob "], "one notice for a follow, unfollow and follow");

    let post = article(&*store, &anna, "post", &[]).await;
    store.create_comment(post.id, bob.id, "first", None).await.unwrap();
    store.create_comment(post.id, carl.id, "second", None).await.unwrap();
    store.create_comment(post.id, anna.id, "thanks", None).await.unwrap();
    store.create_comment(post.id, bob.id, "again", None).await.unwrap();
    assert_eq!(
        inbox(&store, &anna).await,
        ["comment bob post", "comment carl post", "comment bob post", "follow bob "],
        "the author hears of every comment but her own"
    );
    assert_eq!(
        inbox(&store, &bob).await,
        ["reply anna post", "reply carl post"],
        "an earlier commenter hears of replies, not of his own"
    );
    assert_eq!(inbox(&store, &carl).await, ["reply bob post", "reply anna post"]);
    let held = store.create_comment(post.id, carl.id, "spam spam", Some("held")).await.unwrap();
    assert!(held.hidden);
    assert_eq!(inbox(&store, &anna).await.len(), 4, "a held comment tells nobody");

    store.block(anna.id, &username("carl")).await.unwrap();
    assert_eq!(
        inbox(&store, &anna).await,
        ["comment bob post", "comment bob post", "follow bob "],
        "a block takes back what the blocked person caused"
    );
    store.favorite(carl.id, &slug(&post.slug)).await.unwrap();
    assert_eq!(inbox(&store, &anna).await.len(), 3, "nothing from whom she blocks");

    done(store.moderate(&act(&mo, Action::Hide, on_article(&post), None)).await.unwrap());
    done(store.moderate(&act(&mo, Action::Dismiss, on_user(&bob), None)).await.unwrap());
    let (first, _) = (inbox(&store, &anna).await, ());
    assert_eq!(first[0], "moderation - post hide", "the author hears of a hide, with no moderator named");
    assert!(inbox(&store, &bob).await.iter().all(|n| !n.starts_with("moderation")), "a dismissal tells nobody");
    let own = article(&*store, &mo, "mine", &[]).await;
    done(store.moderate(&act(&mo, Action::Hide, on_article(&own), None)).await.unwrap());
    assert!(inbox(&store, &mo).await.is_empty(), "nothing about what one did oneself");
}

/// Favorites not yet read are one notification, the newest favoriter's, with how many others;
/// once read, the next favorite starts a new one.
pub async fn favorites_not_yet_read_are_one_notification(store: TestStore) {
    let anna = user(&*store, "anna").await;
    let post = article(&*store, &anna, "post", &[]).await;
    let mut fans = Vec::new();
    for i in 0..4 {
        fans.push(user(&*store, &format!("fan{i}")).await);
    }
    let favorites = |n: usize| {
        let store = store.clone();
        let anna = anna.clone();
        async move {
            let page = store.notifications(anna.id, None, 100).await.unwrap().0;
            let favs: Vec<_> = page.iter().filter(|n| n.kind == notifications::Kind::Favorite).collect();
            assert_eq!(favs.len(), 1, "after {n}: one notice");
            (favs[0].actor.clone().unwrap().username, favs[0].others, favs[0].id)
        }
    };
    store.favorite(fans[0].id, &slug(&post.slug)).await.unwrap();
    store.favorite(fans[1].id, &slug(&post.slug)).await.unwrap();
    store.favorite(fans[2].id, &slug(&post.slug)).await.unwrap();
    let (actor, others, id) = favorites(3).await;
    assert_eq!((actor.as_str(), others), ("fan2", 2));
    store.unfavorite(fans[2].id, &slug(&post.slug)).await.unwrap();
    store.favorite(fans[2].id, &slug(&post.slug)).await.unwrap();
    assert_eq!(favorites(4).await, (actor, 2, id), "the newest favoriter again tells nothing new");
    store.favorite(anna.id, &slug(&post.slug)).await.unwrap();
    assert_eq!(favorites(5).await.1, 2, "her own favorite is not told");
    assert!(store.mark_notification_read(anna.id, id).await.unwrap());
    store.favorite(fans[3].id, &slug(&post.slug)).await.unwrap();
    let page = store.notifications(anna.id, None, 100).await.unwrap().0;
    let told: Vec<_> = page.iter().map(|n| (n.actor.clone().unwrap().username, n.others, n.read)).collect();
    assert_eq!(told, [("fan3".to_owned(), 0, false), ("fan2".to_owned(), 2, true)]);
}

/// Unread counts, marking one or up to an id read, the inbox's keyset pages, and the tail of
/// every notification in id order (what streams are fed from), with a person's replay.
pub async fn notifications_are_read_marked_and_tailed_in_order(store: TestStore) {
    let anna = user(&*store, "anna").await;
    let mut followers = Vec::new();
    for i in 0..5 {
        let fan = user(&*store, &format!("fan{i}")).await;
        store.follow(fan.id, &username("anna")).await.unwrap();
        followers.push(fan);
    }
    let bob = user(&*store, "bob").await;
    store.follow(anna.id, &username("bob")).await.unwrap();
    assert_eq!(store.unread_notifications(anna.id).await.unwrap(), 5);
    let all = store.notifications(anna.id, None, 100).await.unwrap().0;
    let ids: Vec<i64> = all.iter().map(|n| n.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let first = store.notifications(anna.id, None, 2).await.unwrap().0;
    let second = store.notifications(anna.id, Some(first[1].id), 2).await.unwrap().0;
    assert_eq!(first.iter().chain(&second).map(|n| n.id).collect::<Vec<_>>(), ids[..4]);

    assert!(store.mark_notification_read(anna.id, ids[0]).await.unwrap());
    assert!(!store.mark_notification_read(bob.id, ids[1]).await.unwrap(), "not his to mark");
    assert!(!store.mark_notification_read(anna.id, i64::MAX).await.unwrap());
    assert_eq!(store.unread_notifications(anna.id).await.unwrap(), 4);
    assert_eq!(store.mark_notifications_read(anna.id, Some(ids[3])).await.unwrap(), 2, "up to the one given");
    assert_eq!(store.unread_notifications(anna.id).await.unwrap(), 2);
    assert_eq!(store.mark_notifications_read(anna.id, None).await.unwrap(), 2);
    assert_eq!(store.unread_notifications(anna.id).await.unwrap(), 0);

    let tail = store.notifications_after(0, 100).await.unwrap();
    let tail_ids: Vec<i64> = tail.iter().map(|(id, _)| *id).collect();
    assert_eq!(tail.len(), 6);
    assert!(tail_ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert_eq!(tail.last().unwrap().1.as_ref().unwrap().user, bob.id);
    assert_eq!(store.newest_notification().await.unwrap(), *tail_ids.last().unwrap());
    assert_eq!(store.notifications_after(tail_ids[2], 2).await.unwrap().len(), 2);
    let replay = store.notifications_replay(anna.id, tail_ids[1], tail_ids[4], 100).await.unwrap().unwrap();
    assert_eq!(replay.iter().map(|(id, _)| *id).collect::<Vec<_>>(), tail_ids[2..=4]);

    // A follower gone: the notice is skipped when read, but its id still counts in the tail.
    let mo = moderator(&*store, "mo").await;
    done(store.moderate(&act(&mo, Action::Purge, on_user(&followers[0]), None)).await.unwrap());
    assert_eq!(store.notifications(anna.id, None, 100).await.unwrap().0.len(), 4);
    let tail = store.notifications_after(0, 100).await.unwrap();
    assert_eq!(tail.len(), 6);
    assert!(tail[0].1.is_none(), "shown as gone");
}

/// The age limit and the per-person bound drop notifications; a stream resuming from before
/// what was dropped is told to start over, one resuming after it is not.
pub async fn dropped_notifications_make_a_stream_start_over(store: TestStore) {
    let anna = user(&*store, "anna").await;
    let n = notifications::KEEP_PER_USER + 3 * notifications::TRIM_EVERY;
    let fans: Vec<NewUser> = (0..n)
        .map(|i| NewUser {
            username: username(&format!("fan{i}")),
            email: email(&format!("fan{i}@example.com")),
            password_hash: "h".into(),
        })
        .collect();
    let ids = store.seed_users(&fans).await.unwrap();
    assert_eq!(store.notifications_resume(anna.id, 0).await.unwrap(), notifications::Resume::Exact);
    for id in &ids {
        store.follow(*id, &username("anna")).await.unwrap();
    }
    let kept = store.notifications_after(0, 10_000).await.unwrap().len() as i64;
    assert!(
        (notifications::KEEP_PER_USER..notifications::KEEP_PER_USER + notifications::TRIM_EVERY).contains(&kept),
        "kept {kept} of {n}"
    );
    assert_eq!(store.notifications_resume(anna.id, 0).await.unwrap(), notifications::Resume::TooOld);
    let newest = store.newest_notification().await.unwrap();
    assert_eq!(store.notifications_resume(anna.id, newest).await.unwrap(), notifications::Resume::Exact);

    let bob = user(&*store, "bob").await;
    store.follow(anna.id, &username("bob")).await.unwrap();
    assert_eq!(store.notifications_resume(bob.id, newest).await.unwrap(), notifications::Resume::Exact);
    assert_eq!(store.prune_notifications(chrono::Utc::now() - chrono::Duration::hours(1)).await.unwrap(), 0);
    let dropped = store.prune_notifications(chrono::Utc::now() + chrono::Duration::seconds(1)).await.unwrap();
    assert_eq!(dropped as i64, kept + 1, "everything older than the limit");
    assert_eq!(store.notifications_resume(bob.id, newest).await.unwrap(), notifications::Resume::TooOld);
    assert_eq!(store.notifications_resume(bob.id, newest + 1).await.unwrap(), notifications::Resume::Exact);
}

/// A new article is one row, given to each of the author's followers when their stream resumes
/// (and by the tail to their open streams), in no one's inbox; a held one tells nobody.
pub async fn a_new_article_reaches_the_authors_followers_streams_only(store: TestStore) {
    let (anna, bob, carl) = (user(&*store, "anna").await, user(&*store, "bob").await, user(&*store, "carl").await);
    store.follow(bob.id, &username("anna")).await.unwrap();
    let start = store.newest_notification().await.unwrap();
    let news = article(&*store, &anna, "news", &[]).await;
    let newest = store.newest_notification().await.unwrap();
    assert_eq!(newest, start + 1, "one row, however many follow");
    assert_eq!(store.follower_ids(anna.id).await.unwrap(), [bob.id]);

    let replay = |who: UserId| {
        let store = store.clone();
        async move { store.notifications_replay(who, start, newest, 100).await.unwrap().unwrap() }
    };
    let told = replay(bob.id).await;
    assert_eq!(told.len(), 1);
    let n = told[0].1.clone().unwrap();
    assert_eq!((n.kind, n.user, n.article.unwrap().0), (notifications::Kind::Article, anna.id, news.slug.clone()));
    assert!(replay(carl.id).await.is_empty(), "not a follower");
    assert!(replay(anna.id).await.is_empty(), "nor the author");
    let tail = store.notifications_after(start, 10).await.unwrap();
    assert_eq!(tail.len(), 1, "the tail has it, for the open streams");
    for who in [&anna, &bob, &carl] {
        assert!(
            store
                .notifications(who.id, None, 10)
                .await
                .unwrap()
                .0
                .iter()
                .all(|n| n.kind != notifications::Kind::Article)
        );
        assert_eq!(store.unread_notifications(who.id).await.unwrap(), i64::from(who.id == anna.id), "{}", who.username);
    }

    let held = store.create_article(anna.id, &slug("held"), &new_article("held", &[]), Some("held")).await.unwrap();
    assert!(held.hidden);
    assert_eq!(store.newest_notification().await.unwrap(), newest, "a held article tells nobody");
}
