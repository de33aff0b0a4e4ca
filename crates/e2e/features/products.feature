Feature: Creating products
  A store owner adds products to a store's catalog and changes their prices.

  Scenario: Adding products to a store
    Given a store "Waldorf Books"
    When the store "Waldorf Books" adds these products:
      | name         | description      | sku     | price |
      | Gherkin Book | Cucumbers, a lot | BOOK-1  | 12.50 |
      | Pact Book    | Contracts        | BOOK-2  |  9.99 |
    Then the catalog of "Waldorf Books" is:
      | name         | price |
      | Gherkin Book | 12.50 |
      | Pact Book    |  9.99 |

  Scenario: A product needs a store
    When a product "Gherkin Book" priced 12.50 is added to the store "nowhere"
    Then the request is refused with 404 "store with that ID does not exist"

  Scenario: A product needs a name
    Given a store "Waldorf Books"
    When a product "" priced 12.50 is added to the store "Waldorf Books"
    Then the request is refused with 400 "initializing product: the product name cannot be blank"

  Scenario: Changing prices
    Given a store "Waldorf Books" selling:
      | name         | price |
      | Gherkin Book | 12.50 |
    When the price of "Gherkin Book" is increased to 15.00
    Then the product "Gherkin Book" costs 15.00
    When the price of "Gherkin Book" is decreased to 11.25
    Then the product "Gherkin Book" costs 11.25
    When the price of "Gherkin Book" is increased to 10.00
    Then the request is refused with 400 "the price change would be a decrease"
